// The page's modal dialogs (<dialog>): showModal() moves the focus in and Escape closes them (the
// browser's own behaviour); openDialog() also gives the focus back to whatever opened the dialog.

/**
 * Show `dialog` as a modal and focus `focus` (or the browser's choice). On close the focus returns to the
 * element that opened it, or, when that one is gone (a list drawn again), to what `returnTo()` gives.
 */
export function openDialog(dialog, focus = null, returnTo = null) {
  const opener = document.activeElement;
  dialog.addEventListener(
    "close",
    () => {
      if (document.querySelector("dialog[open]")) return; // another dialog took over
      const target = opener instanceof HTMLElement && opener.isConnected ? opener : returnTo?.();
      target?.focus();
    },
    { once: true },
  );
  dialog.showModal();
  focus?.focus();
}

/** A form's error line: `text` in plain words (or hidden when empty). */
export function formMessage(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

/** A definition list of [term, value] pairs, every value inserted as text. */
export function facts(list, pairs) {
  const nodes = [];
  for (const [term, value] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    nodes.push(dt, dd);
  }
  list.replaceChildren(...nodes);
}
