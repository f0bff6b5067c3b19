//! Lua scripts: every multi-key change of one stream family happens in one script, so it is
//! atomic (and, with the `{stream}` hash tag, stays within one Cluster slot).
//!
//! Attempt records are hashes named `<attempt prefix><entry id>` (computed in the scripts from
//! a prefix passed in ARGV: the ids of due retries are only known inside the script). Fields:
//! `attempts` (attempts started), `first_failed_at`, `error` (last error), `lease` (the token of
//! the consumer currently running a retry, empty when none), `replays`, and `f:<name>` copies
//! of the original fields for replayed letters whose entry may since have been trimmed.
//!
//! Redis does not roll back a script that fails half-way, so every script makes all its reads
//! and every check that can fail before its first write, and none `unpack`s a list whose size
//! comes from data (Lua's `unpack` fails past about 8,000 values): an entry with more than
//! [`MAX_LETTER_FIELDS`] fields keeps them packed in one field of its dead letter
//! (`original_fields`, a MessagePack array of names and values).

use std::sync::LazyLock;

use redis::Script;

/// The fields a dead letter adds; original fields of the same name are not copied.
const OURS: &str = r"
local OURS = {original_id = 1, original_fields = 1, stream = 1, group = 1, handler = 1, reason = 1, error = 1,
  attempts = 1, first_failed_at = 1, failed_at = 1, replays = 1, priority = 1}
";

/// The most original fields (names and values counted apart: 1,000 pairs) a dead letter stores
/// as fields of its own; past it they are packed into `original_fields`.
pub(crate) const MAX_LETTER_FIELDS: usize = 2000;

/// Fields of entry `id`, from the stream or from the copy kept in the attempt record.
const ORIGINAL: &str = r"
local function original(stream, record, id)
  local e = redis.call('XRANGE', stream, id, id)
  if #e > 0 then return e[1][2] end
  local out = {}
  local h = redis.call('HGETALL', record)
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 2) == 'f:' then
      table.insert(out, string.sub(h[i], 3))
      table.insert(out, h[i + 1])
    end
  end
  return out
end
";

/// Fails the script (before any write) unless `key` is absent or of type `want`: a write to a
/// key of another type would fail after the writes before it.
const KIND: &str = r"
local function kind(key, want)
  local t = redis.call('TYPE', key)
  t = t['ok'] or t
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. t .. ', not a ' .. want)
  end
end
";

/// The server's clock in milliseconds: due times, lease ends and failure times come from it,
/// never from the clients' clocks (two hosts with skewed clocks would take each other's leases).
const NOW: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

/// Claims the first entry at or after a cursor that is idle long enough — unless claiming it
/// would make it a suspect (its delivery count would reach `alone_at`, see `consumer::isolate`)
/// and the caller does not run it alone yet: a claim counts a delivery, so a suspect is only
/// claimed once nothing else runs beside it.
/// KEYS: stream. ARGV: group, consumer, min_idle_ms, cursor, alone_at (0: claim anyway).
/// Returns the XAUTOCLAIM reply, or `{'suspect', id}` when the entry was left unclaimed.
pub(super) static CLAIM_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local alone_at = tonumber(ARGV[5])
local start = ARGV[4]
if alone_at > 0 then
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[4], '+', 1)
  if #p == 0 then return {'0-0', {}, {}} end
  if tonumber(p[1][4]) + 1 >= alone_at then
    return {'suspect', p[1][1]}
  end
  start = p[1][1]
end
return redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], start, 'COUNT', 1)
",
    )
});

/// A failed first delivery (or reclaim) moves from the pending list to the retry schedule, with
/// a copy of its fields in the attempt record: a scheduled message does not need its stream
/// entry, so trimming never has to look at the schedules.
/// KEYS: stream, schedule, record. ARGV: group, id, attempts, delay_ms, error, link (the failed
/// attempt's trace context or empty; the first one given is kept).
/// Returns 0 when the entry was no longer pending for the group (someone else finished it).
pub(super) static RETRY_FROM_PENDING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{KIND}{NOW}{}",
        r"
local bad = kind(KEYS[2], 'zset') or kind(KEYS[3], 'hash')
if bad then return bad end
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then return 0 end
local now = now_ms()
local first = redis.call('HGET', KEYS[3], 'first_failed_at') or now
local copied = redis.call('HEXISTS', KEYS[3], 'copied') == 1
local e = {}
if not copied then e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], 'first_failed_at', first, 'attempts', ARGV[3], 'error', ARGV[5],
  'lease', '')
if ARGV[6] and ARGV[6] ~= '' then redis.call('HSETNX', KEYS[3], 'link', ARGV[6]) end
if #e > 0 then
  local f = e[1][2]
  for i = 1, #f, 2 do redis.call('HSET', KEYS[3], 'f:' .. f[i], f[i + 1]) end
  redis.call('HSET', KEYS[3], 'copied', '1')
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
return 1
"
    ))
});

/// A failed retry is rescheduled. KEYS: schedule, record. ARGV: id, lease, delay_ms, error,
/// link (as in `RETRY_FROM_PENDING`).
/// Returns 0 when the lease is no longer ours.
pub(super) static RETRY_AGAIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{KIND}{NOW}{}",
        r"
local bad = kind(KEYS[1], 'zset') or kind(KEYS[2], 'hash')
if bad then return bad end
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], 'error', ARGV[4], 'lease', '')
if ARGV[5] and ARGV[5] ~= '' then redis.call('HSETNX', KEYS[2], 'link', ARGV[5]) end
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[3]), ARGV[1])
return 1
"
    ))
});

/// A successful retry leaves the schedule. KEYS: schedule, record. ARGV: id, lease.
pub(super) static COMPLETE_RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{KIND}{}",
        r"
local bad = kind(KEYS[1], 'zset') or kind(KEYS[2], 'hash')
if bad then return bad end
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"
    ))
});

/// Moves a message to the dead-letter stream (or drops it) and forgets it, in one step.
/// KEYS: stream, dead letters, schedule, record.
/// ARGV: source (`pending` | `scheduled`), keep (`1` | `0`), group, id, lease, stream name,
/// handler, reason, error, attempts (the failure time is the server's), priority lane (empty
/// for `normal`: no `priority` field is written).
/// Returns the dead-letter id, `1` when dropped, or false when the message is no longer ours.
///
/// Reads and checks first (is it still ours, the keys' types, the letter's fields), then the
/// writes: the acknowledgement never happens without the letter.
pub(super) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{OURS}{ORIGINAL}{KIND}{NOW}local MAX_FIELDS = {MAX_LETTER_FIELDS}\n{}",
        r"
local source, keep, group, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local bad = kind(KEYS[2], 'stream') or kind(KEYS[3], 'zset') or kind(KEYS[4], 'hash')
if bad then return bad end
if source == 'pending' then
  if #redis.call('XPENDING', KEYS[1], group, id, id, 1) == 0 then return false end
elseif redis.call('HGET', KEYS[4], 'lease') ~= ARGV[5] then
  return false
end
local failed_at = now_ms()
local first = redis.call('HGET', KEYS[4], 'first_failed_at') or failed_at
local replays = redis.call('HGET', KEYS[4], 'replays') or '0'
local fields = nil
if keep == '1' then
  fields = {}
  local orig = original(KEYS[1], KEYS[4], id)
  for i = 1, #orig, 2 do
    if not OURS[orig[i]] then
      table.insert(fields, orig[i])
      table.insert(fields, orig[i + 1])
    end
  end
  if #fields > MAX_FIELDS then
    fields = {'original_fields', cmsgpack.pack(fields)}
  end
  for _, kv in ipairs({{'original_id', id}, {'stream', ARGV[6]}, {'group', group},
      {'handler', ARGV[7]}, {'reason', ARGV[8]}, {'error', ARGV[9]}, {'attempts', ARGV[10]},
      {'first_failed_at', first}, {'failed_at', failed_at}, {'replays', replays}}) do
    table.insert(fields, kv[1])
    table.insert(fields, kv[2])
  end
  if ARGV[11] and ARGV[11] ~= '' then
    table.insert(fields, 'priority')
    table.insert(fields, ARGV[11])
  end
end
if source == 'pending' then redis.call('XACK', KEYS[1], group, id) end
local result = 1
if fields then result = redis.call('XADD', KEYS[2], '*', unpack(fields)) end
redis.call('ZREM', KEYS[3], id)
redis.call('DEL', KEYS[4])
return result
"
    ))
});

/// Takes up to `count` due retries under a lease: their score moves to the lease's end (so a
/// consumer that dies while running one gives it back when the lease ends) and their attempt
/// count goes up by one (so an attempt cut short by a crash still counts). Due times and the
/// lease's end are the server's clock.
/// KEYS: stream, schedule. ARGV: record prefix, lease_ms, count, lease token.
/// Returns `{{id, attempt, first_failed_at, fields, link}, ...}, ms_until_next_due_or_false`
/// (`link`: the first traced attempt's context, or empty).
pub(super) static LEASE_RETRIES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ORIGINAL}{KIND}{NOW}{}",
        r"
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(due) do
  local record = ARGV[1] .. id
  local bad = kind(record, 'hash')
  if bad then return bad end
  local attempt = (tonumber(redis.call('HGET', record, 'attempts') or '0') or 0) + 1
  local first = redis.call('HGET', record, 'first_failed_at') or ''
  local link = redis.call('HGET', record, 'link') or ''
  table.insert(out, {id, attempt, first, original(KEYS[1], record, id), link})
end
local until_ms = now + tonumber(ARGV[2])
for _, o in ipairs(out) do
  redis.call('ZADD', KEYS[2], until_ms, o[1])
  redis.call('HSET', ARGV[1] .. o[1], 'attempts', o[2], 'lease', ARGV[4])
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = false
if nxt[2] then wait = math.max(0, tonumber(nxt[2]) - now) end
return {out, wait}
"
    ))
});

/// Puts a dead letter back into its group's retry schedule, due now, with a fresh attempt count
/// and its replay counter raised; removes it from the dead-letter stream.
/// KEYS: dead letters, schedule, record. ARGV: dead-letter id, group, original id, max replays
/// (due now by the server's clock).
/// Returns 1, -1 when the letter is gone or not what was listed, -2 when the loop guard stops
/// it, -3 when its packed `original_fields` cannot be read.
pub(super) static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{OURS}{KIND}{NOW}{}",
        r"
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return -1 end
local f = e[1][2]
local m = {}
for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
if m.group ~= ARGV[2] or m.original_id ~= ARGV[3] then return -1 end
local replays = tonumber(m.replays or '0') or 0
if replays >= tonumber(ARGV[4]) then return -2 end
local bad = kind(KEYS[2], 'zset')
if bad then return bad end
local orig = {}
for i = 1, #f, 2 do
  if f[i] == 'original_fields' then
    local ok, packed = pcall(cmsgpack.unpack, f[i + 1])
    if not ok or type(packed) ~= 'table' then return -3 end
    for j = 1, #packed, 2 do
      table.insert(orig, packed[j])
      table.insert(orig, packed[j + 1])
    end
  elseif not OURS[f[i]] then
    table.insert(orig, f[i])
    table.insert(orig, f[i + 1])
  end
end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], 'attempts', 0, 'replays', replays + 1, 'lease', '')
for i = 1, #orig, 2 do redis.call('HSET', KEYS[3], 'f:' .. orig[i], orig[i + 1]) end
redis.call('HSET', KEYS[3], 'copied', '1')
redis.call('ZADD', KEYS[2], now_ms(), ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"
    ))
});

/// Resets the idle time of the given entries that are pending for this consumer, without
/// counting a delivery (entries read ahead and not started yet, see `consumer::ahead`). Every
/// check comes before the first write.
/// KEYS: stream. ARGV: group, consumer, ids... Returns the ids refreshed.
pub(super) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ours = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then table.insert(ours, ARGV[i]) end
end
for _, id in ipairs(ours) do
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
end
return ours
",
    )
});

/// The most entries one trim step removes per kind of trim (lossless, length cap, age cap).
pub(super) const TRIM_STEP: u64 = 100_000;
/// How long the one-trimmer lock lasts if its holder dies mid-pass.
pub(super) const TRIM_LOCK_MS: u64 = 60_000;

/// One bounded step of trimming: lossless (below the oldest entry a group still needs: its
/// oldest pending entry or the one after its last delivered), then the optional hard caps.
/// Every `XTRIM` is approximate with `LIMIT step` (whole radix-tree nodes, at most `step`
/// entries), followed by an exact one only when the approximate one clearly finished (removed
/// more than 1,000 entries fewer than the limit; then the exact one removes less than a node): one step never removes more than about `step` entries per trim kind,
/// whatever the stream's length. Retry schedules are not read: a scheduled message keeps a copy
/// of its fields in its attempt record. One instance trims a stream at a time (a lock key with
/// the trimming instance's token, released when a pass is complete).
/// KEYS: stream, lock. ARGV: max_len (0 = none), max_age_ms (0 = none), step, token, lock_ms.
/// Returns `{trimmed, capped, capped_needed, more}` (`more` = 1: call again) or `{-2}` when
/// another instance holds the lock.
pub(super) static TRIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{}",
        r"
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return {tonumber(ms), tonumber(seq)}
end
local function less(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end
local function fmt(p) return string.format('%.0f-%.0f', p[1], p[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
  return {0, 0, 0, 0}
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[4] then return {-2} end
local step = tonumber(ARGV[3])
local min = nil
local function consider(p) if min == nil or less(p, min) then min = p end end
local groups = {}
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
  if tonumber(info['pending']) > 0 then
    local s = redis.call('XPENDING', KEYS[1], info['name'])
    consider(parse(s[2]))
  end
  local last = parse(info['last-delivered-id'])
  consider({last[1], last[2] + 1})
  table.insert(groups, info)
end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
local more = 0
-- An approximate trim with a LIMIT, then (only if it finished) an exact one for the rest of
-- the last node.
local function bounded(kind, arg)
  local n = redis.call('XTRIM', KEYS[1], kind, '~', arg, 'LIMIT', step)
  -- Whole nodes only: an approximate trim stopped by the LIMIT removes up to a node less than
  -- it. Finished means well under it (nodes hold 100 entries by default; 1,000 is a margin).
  if n + 1000 < step then
    n = n + redis.call('XTRIM', KEYS[1], kind, arg)
  else
    more = 1
  end
  return n
end
local trimmed = 0
if #groups > 0 and min ~= nil then trimmed = bounded('MINID', fmt(min)) end
local capped, needed = 0, 0
local max_len, max_age = tonumber(ARGV[1]), tonumber(ARGV[2])
if max_len > 0 or max_age > 0 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  local added = nil
  for j = 1, #info, 2 do
    if info[j] == 'entries-added' then added = tonumber(info[j + 1]) end
  end
  local len_before = redis.call('XLEN', KEYS[1])
  if max_len > 0 and len_before > max_len then
    capped = capped + bounded('MAXLEN', max_len)
  end
  if max_age > 0 then
    capped = capped + bounded('MINID', string.format('%.0f-0', now_ms() - max_age))
  end
  if capped > 0 then
    -- Entries a group had not read, from the groups' and the stream's counters (no entry is
    -- loaded; unknown, so not counted, when Redis has no valid counter for the group), plus its
    -- pending entries among those dropped (counted up to 1,000).
    local len_after = redis.call('XLEN', KEYS[1])
    local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
    for _, g in ipairs(groups) do
      -- The group's undelivered entries are the newest `lag` ones; the caps dropped the
      -- oldest `capped`.
      local lost = 0
      local lag, read = tonumber(g['lag']), tonumber(g['entries-read'])
      if lag then
        lost = math.max(0, capped - (len_before - lag))
      elseif added and read then
        lost = math.max(0, (added - len_after) - math.max(read, added - len_before))
      end
      if tonumber(g['pending']) > 0 then
        local upto = '+'
        if #first > 0 then upto = '(' .. first[1][1] end
        lost = lost + #redis.call('XPENDING', KEYS[1], g['name'], '-', upto, 1000)
      end
      needed = math.max(needed, lost)
    end
  end
end
if more == 0 then redis.call('DEL', KEYS[2]) end
return {trimmed, capped, needed, more}
"
    ))
});

/// Schedules a delayed event, due `delay_ms` after the server's now.
/// KEYS: schedule (zset), data (hash), lanes (hash). ARGV: event id, delay_ms, packed fields,
/// lane (`low`, `high`, `critical`; empty for `normal`, which writes nothing to the lanes hash).
/// Returns the due time in ms, or -1 when an event with this id is already scheduled.
pub(super) static SCHEDULE_DELAYED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{KIND}{NOW}{}",
        r"
local bad = kind(KEYS[1], 'zset') or kind(KEYS[2], 'hash') or kind(KEYS[3], 'hash')
if bad then return bad end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
local due = now_ms() + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], due, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end
return due
"
    ))
});

/// Cancels a delayed event not yet moved. KEYS: schedule, data, lanes. ARGV: event id.
/// Returns 1 when it was scheduled.
pub(super) static CANCEL_DELAYED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{KIND}{}",
        r"
local bad = kind(KEYS[1], 'zset') or kind(KEYS[2], 'hash') or kind(KEYS[3], 'hash')
if bad then return bad end
local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return n
"
    ))
});

/// Moves due delayed events into the stream, for the holder of the lease (taken or renewed
/// here). Each event is appended, then removed from the schedule: a failure half-way leaves
/// every event either moved or still scheduled, never both. Data that does not unpack to an
/// even list of at most 2,000 names and values is removed and counted as dropped.
/// An event with a lane in the lanes hash goes to that lane's stream (an unknown lane name: to
/// the stream's own key, as for `normal`).
/// KEYS: schedule, data, stream, lease, lanes (hash), low lane, high lane, critical lane
/// streams. ARGV: token, lease_ms, max.
/// Returns `{moved, dropped, ms until the next is due or -1, 1 when another runtime holds the
/// lease}`.
pub(super) static MOVE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{KIND}{NOW}{}",
        r"
local bad = kind(KEYS[1], 'zset') or kind(KEYS[2], 'hash') or kind(KEYS[3], 'stream')
  or kind(KEYS[4], 'string') or kind(KEYS[5], 'hash') or kind(KEYS[6], 'stream')
  or kind(KEYS[7], 'stream') or kind(KEYS[8], 'stream')
if bad then return bad end
local LANES = {low = KEYS[6], high = KEYS[7], critical = KEYS[8]}
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= ARGV[1] then return {0, 0, -1, 1} end
redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[2])
local now = now_ms()
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
local moved, dropped = 0, 0
for _, id in ipairs(due) do
  local packed = redis.call('HGET', KEYS[2], id)
  local ok, f = false, nil
  if packed then ok, f = pcall(cmsgpack.unpack, packed) end
  local lane = redis.call('HGET', KEYS[5], id)
  if ok and type(f) == 'table' and #f >= 2 and #f % 2 == 0 and #f <= 2000 then
    redis.call('XADD', (lane and LANES[lane]) or KEYS[3], '*', unpack(f))
    moved = moved + 1
  else
    dropped = dropped + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  if lane then redis.call('HDEL', KEYS[5], id) end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_in = -1
if #nxt > 0 then next_in = math.max(0, tonumber(nxt[2]) - now) end
return {moved, dropped, next_in, 0}
"
    ))
});

/// Lists scheduled events, soonest first. KEYS: schedule, data. ARGV: min score (`-inf` or a
/// number), max score (`+inf` or `(number`), limit.
/// Returns `{id, due, packed or false, ...}`.
pub(super) static LIST_DELAYED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ids = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]),
  'WITHSCORES')
local out = {}
for i = 1, #ids, 2 do
  table.insert(out, ids[i])
  table.insert(out, ids[i + 1])
  table.insert(out, redis.call('HGET', KEYS[2], ids[i]) or '')
end
return out
",
    )
});
