"""The Lua scripts behind :class:`~chatio.presence.redis.RedisPresence`; each runs atomically in Redis.

Every script gets the key prefix ``P`` (``{<CHATIO_REDIS_PREFIX>:presence}``) as ``ARGV[1]`` and builds
its keys from it; ``KEYS[1]`` is ``P`` too, so that a Redis Cluster client sends the script to the node
that owns ``P``'s slot. ``P`` is a hash tag: every presence key lives in that one slot, so each script runs
on one node of a Redis Cluster (and on a single Redis as before). The price is that one shard carries all
of presence: a few small writes per connect, join, leave and disconnect, and one heartbeat per process
and interval, never anything per message (docs/scaling.md counts it). Layout:

``P:pods``              sorted set: process id -> heartbeat deadline (ms, Redis clock)
``P:podname``           hash: process id -> pod name (``CHATIO_POD_NAME``)
``P:pod:<id>``          set: the socket ids a process holds
``P:reaped:<id>``       flag: another process reaped this one's sockets (its next heartbeat re-registers)
``P:sock:<sid>``        hash: ``user``, ``pod``, ``gone`` ("1" once disconnected but still in rooms)
``P:sockrooms:<sid>``   set: the rooms a socket is in
``P:usocks:<user>``     set: the user's connected sockets
``P:online``            set: users with at least one connected socket
``P:status``            hash: user -> status, for online users
``P:room:<room>``       hash: user -> number of the user's sockets in the room
``P:urooms:<user>``     set: rooms where the user has a socket
``P:rooms``             set: rooms with at least one member

A socket's keys live as long as its process's heartbeat: the reaper (any live process) removes the
sockets of a process whose deadline passed, with ``reap`` below, and reports what changed.
"""

from __future__ import annotations

from typing import Final

_NOW: Final = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# Helpers shared by several scripts. ``P`` is the prefix. They return true when the user's state changed
# (first or last socket), which is what the callers report.
_HELPERS: Final = """
local P = ARGV[1]

local function join(room, user, sid)
  if redis.call('SADD', P .. ':sockrooms:' .. sid, room) == 0 then return false end
  if redis.call('HINCRBY', P .. ':room:' .. room, user, 1) ~= 1 then return false end
  redis.call('SADD', P .. ':urooms:' .. user, room)
  redis.call('SADD', P .. ':rooms', room)
  return true
end

local function leave(room, user, sid)
  if redis.call('SREM', P .. ':sockrooms:' .. sid, room) == 0 then return false end
  if redis.call('HINCRBY', P .. ':room:' .. room, user, -1) > 0 then return false end
  redis.call('HDEL', P .. ':room:' .. room, user)
  redis.call('SREM', P .. ':urooms:' .. user, room)
  if redis.call('EXISTS', P .. ':room:' .. room) == 0 then redis.call('SREM', P .. ':rooms', room) end
  return true
end

local function connect(user, sid, status)
  if redis.call('SADD', P .. ':usocks:' .. user, sid) == 0 then return false end
  if redis.call('SCARD', P .. ':usocks:' .. user) > 1 then return false end
  redis.call('SADD', P .. ':online', user)
  redis.call('HSET', P .. ':status', user, status)
  return true
end

local function disconnect(user, sid)
  if redis.call('SREM', P .. ':usocks:' .. user, sid) == 0 then return false end
  if redis.call('SCARD', P .. ':usocks:' .. user) > 0 then return false end
  redis.call('SREM', P .. ':online', user)
  redis.call('HDEL', P .. ':status', user)
  return true
end

local function track(sid, user, pod)
  local sock = P .. ':sock:' .. sid
  redis.call('HSETNX', sock, 'user', user)
  redis.call('HSETNX', sock, 'pod', pod)
  redis.call('SADD', P .. ':pod:' .. pod, sid)
end

-- Forget a socket once it is disconnected and out of every room.
local function forget_if_done(sid)
  local sock = P .. ':sock:' .. sid
  if redis.call('HGET', sock, 'gone') ~= '1' then return end
  if redis.call('EXISTS', P .. ':sockrooms:' .. sid) == 1 then return end
  local pod = redis.call('HGET', sock, 'pod')
  redis.call('DEL', sock)
  if pod then redis.call('SREM', P .. ':pod:' .. pod, sid) end
end

-- Remove every trace of a socket: {user, went offline (0/1), rooms it was in, rooms the user left}.
local function reap(sid)
  local sock = P .. ':sock:' .. sid
  local user = redis.call('HGET', sock, 'user')
  local pod = redis.call('HGET', sock, 'pod')
  local rooms = redis.call('SMEMBERS', P .. ':sockrooms:' .. sid)
  local left = {}
  local offline = 0
  if user then
    for _, room in ipairs(rooms) do
      if leave(room, user, sid) then table.insert(left, room) end
    end
    if redis.call('HGET', sock, 'gone') ~= '1' and disconnect(user, sid) then offline = 1 end
  end
  redis.call('DEL', sock, P .. ':sockrooms:' .. sid)
  if pod then redis.call('SREM', P .. ':pod:' .. pod, sid) end
  if not user then return false end
  return {user, offline, rooms, left}
end
"""

# ARGV: P, pod, sid, user -> 1 when it is the user's first socket
CONNECT: Final = (
    _HELPERS
    + """
local pod, sid, user = ARGV[2], ARGV[3], ARGV[4]
local sock = P .. ':sock:' .. sid
redis.call('HSET', sock, 'user', user, 'pod', pod, 'gone', '0')
redis.call('SADD', P .. ':pod:' .. pod, sid)
return connect(user, sid, 'online') and 1 or 0
"""
)

# ARGV: P, sid, user -> 1 when it was the user's last socket
DISCONNECT: Final = (
    _HELPERS
    + """
local sid, user = ARGV[2], ARGV[3]
local last = disconnect(user, sid)
if redis.call('EXISTS', P .. ':sock:' .. sid) == 1 then
  redis.call('HSET', P .. ':sock:' .. sid, 'gone', '1')
  forget_if_done(sid)
end
return last and 1 or 0
"""
)

# ARGV: P, pod, room, user, sid, limit -> 1 when it is the user's first socket in the room, -1 when the
# user is not in the room and ``limit`` (> 0) users are: the socket is not joined.
JOIN: Final = (
    _HELPERS
    + """
local pod, room, user, sid, limit = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local members = P .. ':room:' .. room
if limit > 0 and redis.call('HEXISTS', members, user) == 0 and redis.call('HLEN', members) >= limit then
  return -1
end
track(sid, user, pod)
return join(room, user, sid) and 1 or 0
"""
)

# ARGV: P, room, user, sid -> 1 when it was the user's last socket in the room
LEAVE: Final = (
    _HELPERS
    + """
local room, user, sid = ARGV[2], ARGV[3], ARGV[4]
local last = leave(room, user, sid)
forget_if_done(sid)
return last and 1 or 0
"""
)

# ARGV: P, user, status
SET_STATUS: Final = """
local P, user, status = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SISMEMBER', P .. ':online', user) == 1 then
  redis.call('HSET', P .. ':status', user, status)
end
return 0
"""

# ARGV: P, room -> {user, status, user, status, ...}
MEMBERS: Final = """
local P, room = ARGV[1], ARGV[2]
local users = redis.call('HKEYS', P .. ':room:' .. room)
local out = {}
for _, user in ipairs(users) do
  table.insert(out, user)
  table.insert(out, redis.call('HGET', P .. ':status', user) or 'offline')
end
return out
"""

# Re-assert one socket of this process as the process's own record has it; idempotent.
# ARGV: P, pod, sid, user, connected (0/1), status, room... -> {came online (0/1), {rooms joined first}}
RESTORE: Final = (
    _HELPERS
    + """
local pod, sid, user, connected, status = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local sock = P .. ':sock:' .. sid
redis.call('HSET', sock, 'user', user, 'pod', pod, 'gone', connected == '1' and '0' or '1')
redis.call('SADD', P .. ':pod:' .. pod, sid)
local online = 0
if connected == '1' and connect(user, sid, status) then online = 1 end
local wanted = {}
local firsts = {}
for i = 7, #ARGV do
  wanted[ARGV[i]] = true
  if join(ARGV[i], user, sid) then table.insert(firsts, ARGV[i]) end
end
for _, room in ipairs(redis.call('SMEMBERS', P .. ':sockrooms:' .. sid)) do
  if not wanted[room] then leave(room, user, sid) end
end
return {online, firsts}
"""
)

# ARGV: P, sid -> reap's answer, or nil
REAP_SOCKET: Final = (
    _HELPERS
    + """
return reap(ARGV[2])
"""
)

# ARGV: P, pod, name, ttl_ms -> {1 when Redis still knew this process and nobody reaped it, sockets held}
HEARTBEAT: Final = (
    _NOW
    + """
local P, pod, name, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local reaped = redis.call('DEL', P .. ':reaped:' .. pod)
local known = redis.call('ZSCORE', P .. ':pods', pod)
redis.call('ZADD', P .. ':pods', string.format('%.0f', now_ms() + ttl), pod)
redis.call('HSET', P .. ':podname', pod, name)
local intact = (known and reaped == 0) and 1 or 0
return {intact, redis.call('SCARD', P .. ':pod:' .. pod)}
"""
)

# ARGV: P -> ids of processes whose heartbeat deadline passed
EXPIRED: Final = (
    _NOW
    + """
return redis.call('ZRANGEBYSCORE', ARGV[1] .. ':pods', '-inf', '(' .. string.format('%.0f', now_ms()))
"""
)

# Reap up to ``batch`` sockets of a dead process (or, with force=1, of this one as it leaves).
# ARGV: P, pod, batch, force -> {0: alive, nothing done | 1: finished | 2: more to do, {reap answers}}
REAP_POD: Final = (
    _NOW
    + _HELPERS
    + """
local pod, batch, force = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local deadline = redis.call('ZSCORE', P .. ':pods', pod)
if force ~= '1' and (not deadline or tonumber(deadline) >= now_ms()) then return {0, {}} end
if force ~= '1' then redis.call('SET', P .. ':reaped:' .. pod, '1', 'PX', 3600000) end
local out = {}
for _, sid in ipairs(redis.call('SRANDMEMBER', P .. ':pod:' .. pod, batch)) do
  local answer = reap(sid)
  redis.call('SREM', P .. ':pod:' .. pod, sid)
  if answer then table.insert(out, answer) end
end
if redis.call('SCARD', P .. ':pod:' .. pod) > 0 then return {2, out} end
redis.call('ZREM', P .. ':pods', pod)
redis.call('HDEL', P .. ':podname', pod)
return {1, out}
"""
)

# ARGV: P -> {name, sockets, name, sockets, ...} for processes whose heartbeat is current
PODS: Final = (
    _NOW
    + """
local P = ARGV[1]
local out = {}
for _, pod in ipairs(redis.call('ZRANGEBYSCORE', P .. ':pods', string.format('%.0f', now_ms()), '+inf')) do
  table.insert(out, redis.call('HGET', P .. ':podname', pod) or pod)
  table.insert(out, redis.call('SCARD', P .. ':pod:' .. pod))
end
return out
"""
)
