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
  attempts = 1, first_failed_at = 1, failed_at = 1, replays = 1}
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

/// A failed first delivery (or reclaim) moves from the pending list to the retry schedule.
/// KEYS: stream, schedule, record. ARGV: group, id, attempts, due_ms, error, now_ms.
/// Returns 0 when the entry was no longer pending for the group (someone else finished it).
pub(super) static RETRY_FROM_PENDING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{KIND}{}",
        r"
local bad = kind(KEYS[2], 'zset') or kind(KEYS[3], 'hash')
if bad then return bad end
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then return 0 end
local first = redis.call('HGET', KEYS[3], 'first_failed_at') or ARGV[6]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], 'first_failed_at', first, 'attempts', ARGV[3], 'error', ARGV[5],
  'lease', '')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
return 1
"
    ))
});

/// A failed retry is rescheduled. KEYS: schedule, record. ARGV: id, lease, due_ms, error.
/// Returns 0 when the lease is no longer ours.
pub(super) static RETRY_AGAIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{KIND}{}",
        r"
local bad = kind(KEYS[1], 'zset') or kind(KEYS[2], 'hash')
if bad then return bad end
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], 'error', ARGV[4], 'lease', '')
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
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
/// handler, reason, error, attempts, failed_at.
/// Returns the dead-letter id, `1` when dropped, or false when the message is no longer ours.
///
/// Reads and checks first (is it still ours, the keys' types, the letter's fields), then the
/// writes: the acknowledgement never happens without the letter.
pub(super) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{OURS}{ORIGINAL}{KIND}local MAX_FIELDS = {MAX_LETTER_FIELDS}\n{}",
        r"
local source, keep, group, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local bad = kind(KEYS[2], 'stream') or kind(KEYS[3], 'zset') or kind(KEYS[4], 'hash')
if bad then return bad end
if source == 'pending' then
  if #redis.call('XPENDING', KEYS[1], group, id, id, 1) == 0 then return false end
elseif redis.call('HGET', KEYS[4], 'lease') ~= ARGV[5] then
  return false
end
local first = redis.call('HGET', KEYS[4], 'first_failed_at') or ARGV[11]
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
      {'first_failed_at', first}, {'failed_at', ARGV[11]}, {'replays', replays}}) do
    table.insert(fields, kv[1])
    table.insert(fields, kv[2])
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
/// count goes up by one (so an attempt cut short by a crash still counts).
/// KEYS: stream, schedule. ARGV: record prefix, now_ms, lease_until_ms, count, lease token.
/// Returns `{{id, attempt, first_failed_at, fields}, ...}, next_due_score_or_false`.
pub(super) static LEASE_RETRIES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ORIGINAL}{KIND}{}",
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(due) do
  local record = ARGV[1] .. id
  local bad = kind(record, 'hash')
  if bad then return bad end
  local attempt = (tonumber(redis.call('HGET', record, 'attempts') or '0') or 0) + 1
  local first = redis.call('HGET', record, 'first_failed_at') or ''
  table.insert(out, {id, attempt, first, original(KEYS[1], record, id)})
end
for _, o in ipairs(out) do
  redis.call('ZADD', KEYS[2], ARGV[3], o[1])
  redis.call('HSET', ARGV[1] .. o[1], 'attempts', o[2], 'lease', ARGV[5])
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {out, nxt[2] or false}
"
    ))
});

/// Puts a dead letter back into its group's retry schedule, due now, with a fresh attempt count
/// and its replay counter raised; removes it from the dead-letter stream.
/// KEYS: dead letters, schedule, record. ARGV: dead-letter id, group, original id, max replays,
/// now_ms.
/// Returns 1, -1 when the letter is gone or not what was listed, -2 when the loop guard stops
/// it, -3 when its packed `original_fields` cannot be read.
pub(super) static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{OURS}{KIND}{}",
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
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
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

/// Lossless trimming, then the optional hard caps, in one step.
/// KEYS: stream, then the retry schedule of every group (in the order of ARGV's group names).
/// ARGV: number of groups, their names..., max_len (0 = none), max_age cut id ('' = none).
/// Returns `{trimmed_lossless, capped, capped_needed}` or `{-1}` when the groups changed.
pub(super) static TRIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return {tonumber(ms), tonumber(seq)}
end
local function less(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end
local function fmt(p) return string.format('%.0f-%.0f', p[1], p[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0} end
local n = tonumber(ARGV[1])
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups ~= n then return {-1} end
local min = nil
local function consider(p) if min == nil or less(p, min) then min = p end end
for i, g in ipairs(groups) do
  local info = {}
  for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
  if info['name'] ~= ARGV[1 + i] then return {-1} end
  if tonumber(info['pending']) > 0 then
    local s = redis.call('XPENDING', KEYS[1], info['name'])
    consider(parse(s[2]))
  end
  local last = parse(info['last-delivered-id'])
  consider({last[1], last[2] + 1})
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1 + i], 0, -1)) do
    consider(parse(id))
  end
end
local trimmed = 0
if n > 0 and min ~= nil then
  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', fmt(min))
end
local capped, needed = 0, 0
local function count_needed(upto)
  if n == 0 or min == nil then return 0 end
  local r = redis.call('XRANGE', KEYS[1], fmt(min), upto)
  return #r
end
local max_len = tonumber(ARGV[n + 2])
if max_len > 0 then
  local len = redis.call('XLEN', KEYS[1])
  if len > max_len then
    local dropped = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - max_len)
    needed = needed + count_needed(dropped[#dropped][1])
    capped = capped + redis.call('XTRIM', KEYS[1], 'MAXLEN', max_len)
  end
end
local cut = ARGV[n + 3]
if cut ~= '' then
  local c = parse(cut)
  if min ~= nil and less(min, c) then needed = needed + count_needed('(' .. cut) end
  capped = capped + redis.call('XTRIM', KEYS[1], 'MINID', cut)
end
return {trimmed, capped, needed}
",
    )
});
