"""chatio: a Socket.IO-compatible realtime chat server (python-socketio on aiohttp)."""

__version__ = "0.1.0"
