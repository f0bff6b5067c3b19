//! Least privilege: the Redis ACL rules a service needs — only the commands the runtime sends
//! (directly and inside its Lua scripts, whose commands Redis checks against the ACL too) and
//! only the keys of the streams it publishes to or handles.
//!
//! ```
//! use opsc_events_runtime::acl;
//!
//! # fn main() -> Result<(), acl::AclError> {
//! let rules = acl::rules("inventory", "opsconductor", ["audit"], ["assets"])?;
//! assert_eq!(
//!     rules.key_patterns(),
//!     [
//!         "~opsconductor:{assets}:*",
//!         "~opsconductor:{audit}:events",
//!         "~opsconductor:{schemas}:registry",
//!     ]
//! );
//! // `ACL SETUSER inventory on ><password> resetkeys ~opsconductor:{assets}:* ... -@all +ping ...`
//! println!("{rules}");
//! # Ok(()) }
//! ```
//!
//! A service that handles a stream gets every key of the stream's family
//! (`<prefix>:{<stream>}:*`: events, dead letters, retry schedules, attempt records, trim lock)
//! and the commands of consuming, retrying, dead-lettering, replaying and trimming; a stream it
//! only publishes to gets its events key alone. The command set is one for the whole user
//! (Redis 6.2 has no per-key command sets), so a service that handles any stream may run the
//! handling commands on the events key of a stream it only publishes to.
//!
//! Not included, on purpose:
//! - `SCAN` (only [`Runtime::streams`](crate::Runtime::streams) sends it): ACL key patterns do
//!   not limit it, so it would show every key name on the server.
//! - `CLIENT SETINFO`: the Redis client sends it on connect and ignores its failure (the
//!   command only exists from Redis 7.2, and naming it fails `ACL SETUSER` on older servers).
//! - Channels: the runtime uses no Pub/Sub (`resetchannels` and no `&` pattern).
//! - `AUTH` and `HELLO` are always allowed by Redis.

use std::collections::BTreeSet;
use std::fmt;

use crate::keys::{InvalidName, KEY_PREFIX, SERVICE_NAME, STREAM_NAME};
use crate::runtime::Runtime;

/// Where the password goes in the printed rules: replace it (with `>secret`, or `#<sha256 hex>`
/// to keep the password itself out of shell history and config files).
pub const PASSWORD_PLACEHOLDER: &str = "<password>";

/// Sent on every connection: `PING` at connect and by health checks; `INFO` and `COMMAND INFO`
/// by the server check of `build()` (without them the check is skipped, logged); `SELECT` when
/// the URL names a database other than 0 (key patterns still apply in every database).
const CONNECT: &[&str] = &["ping", "info", "command|info", "select"];

/// Publishing: one `XADD` per event (pipelined).
const PUBLISH: &[&str] = &["xadd"];

/// Recording the service's entries in the schema registry at build: `HSET` and `HGETALL` in
/// one `MULTI` (docs/CONTRACTS.md).
const REGISTRY: &[&str] = &["multi", "hset", "hgetall", "exec"];

/// Scheduling and cancelling delayed events (`publish_after`, `cancel`): two scripts.
const PUBLISH_DELAYED: &[&str] = &[
    "evalsha",
    "script|load",
    // Inside the scripts.
    "time",
    "type",
    "zscore",
    "zadd",
    "zrem",
    "hset",
    "hdel",
];

/// Publishing with a priority (`PublishOptions::priority`, `#[event(priority)]`): the lane
/// marker, recorded once before a lane's first entry.
const PUBLISH_PRIORITY: &[&str] = &["sadd"];

/// Handling a stream: consumer loops, retries, dead letters (and their API: list, get, replay,
/// purge), trimming, health and `Runtime::stream_info`. Direct commands and, marked, those only
/// sent from inside the Lua scripts (`transport/redis/scripts.rs` and the consumer removal
/// script in `consume.rs`).
const HANDLE: &[&str] = &[
    // Consumer groups and reads.
    "xgroup|create",
    "xgroup|delconsumer", // script: idle consumers without pending entries
    "xreadgroup",
    "xack",
    "xclaim",
    "xautoclaim",
    "xpending",
    "xinfo|groups",
    "xinfo|consumers",
    "xinfo|stream", // script: trimming with a length or age cap
    "xlen",
    "xrange",
    "xrevrange",
    "xtrim",   // script: trimming
    "xdel",    // dead-letter purge and replay
    "zcard",   // stream info: retries scheduled
    "evalsha", // every script
    "script|load",
    // Inside the scripts.
    "time",
    "type",
    "exists",
    "get",
    "set",
    "del",
    "hget",
    "hset",
    "hexists",
    "hgetall",
    "zadd",
    "zrem",
    "zrange",
    "zrangebyscore",
    "zscore",   // script: scheduling a delayed event
    "hdel",     // script: moving or cancelling a delayed event
    "smembers", // the stream's priority lanes (build, lane watcher, trimming)
    "sadd",     // publishing with a priority to a handled stream
];

/// Why rules could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AclError {
    /// The user name breaks the service name's rule (`[A-Za-z0-9_.-]{1,64}`).
    #[error("the ACL user follows the service name's rule: {0}")]
    User(#[source] InvalidName),
    /// The key prefix breaks its rule.
    #[error(transparent)]
    Prefix(InvalidName),
    /// A stream name breaks its rule.
    #[error(transparent)]
    Stream(InvalidName),
    /// Neither a stream to publish to nor one to handle: the user could do nothing.
    #[error(
        "no stream given: a service needs the rules of at least one stream it publishes to or handles"
    )]
    NoStreams,
}

/// The ACL rules of one Redis user: print them ([`Display`](fmt::Display), with
/// [`PASSWORD_PLACEHOLDER`]) or send them ([`AclRules::setuser_args`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRules {
    user: String,
    prefix: String,
    /// Streams handled (every key of their family).
    handles: BTreeSet<String>,
    /// Streams only published to (their events key), none of `handles`.
    publishes: BTreeSet<String>,
    /// Publishing delayed events to the streams only published to (their schedule keys too).
    delayed: bool,
    /// Publishing with a priority to the streams only published to (their lanes too).
    priority: bool,
}

/// The rules of `user` for a service that publishes to `publishes` and handles `handles`,
/// under the key prefix `prefix`. A stream in both is handled. Every name is checked (the
/// rules of `docs/WIRE.md` § Names and limits), so none holds a glob character.
pub fn rules<'a>(
    user: &str,
    prefix: &str,
    publishes: impl IntoIterator<Item = &'a str>,
    handles: impl IntoIterator<Item = &'a str>,
) -> Result<AclRules, AclError> {
    SERVICE_NAME.check(user).map_err(AclError::User)?;
    KEY_PREFIX.check(prefix).map_err(AclError::Prefix)?;
    let checked = |streams: &mut dyn Iterator<Item = &'a str>| {
        streams
            .map(|s| {
                STREAM_NAME
                    .check(s)
                    .map(|()| s.to_owned())
                    .map_err(AclError::Stream)
            })
            .collect::<Result<BTreeSet<String>, AclError>>()
    };
    let handles = checked(&mut handles.into_iter())?;
    let mut publishes = checked(&mut publishes.into_iter())?;
    publishes.retain(|s| !handles.contains(s));
    if handles.is_empty() && publishes.is_empty() {
        return Err(AclError::NoStreams);
    }
    Ok(AclRules {
        user: user.to_owned(),
        prefix: prefix.to_owned(),
        handles,
        publishes,
        delayed: false,
        priority: false,
    })
}

impl AclRules {
    /// Also lets the service schedule and cancel delayed events (`Publisher::publish_after`,
    /// `cancel`) on the streams it only publishes to: their schedule keys
    /// (`~<prefix>:{<stream>}:delayed*`) and the scripts' commands. (A handled stream's rules
    /// already cover them.)
    pub fn with_delayed_publishing(mut self) -> Self {
        self.delayed = true;
        self
    }

    /// Also lets the service publish with a priority other than `normal` to the streams it
    /// only publishes to: their lanes (`~<prefix>:{<stream>}:lane:*:events`), their lane
    /// marker (`~<prefix>:{<stream>}:lanes`) and `SADD`. (A handled stream's rules already
    /// cover them.)
    pub fn with_priority_publishing(mut self) -> Self {
        self.priority = true;
        self
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The key patterns, `~<prefix>:{<stream>}:*` for a handled stream and
    /// `~<prefix>:{<stream>}:events` for one only published to, sorted by stream.
    pub fn key_patterns(&self) -> Vec<String> {
        let mut out: Vec<(&str, String)> = self
            .handles
            .iter()
            .map(|s| {
                (
                    s.as_str(),
                    format!("~{}:{{{}}}:*", glob(&self.prefix), glob(s)),
                )
            })
            .chain(self.publishes.iter().map(|s| {
                (
                    s.as_str(),
                    format!("~{}:{{{}}}:events", glob(&self.prefix), glob(s)),
                )
            }))
            .chain(self.publishes.iter().filter(|_| self.delayed).map(|s| {
                (
                    s.as_str(),
                    format!("~{}:{{{}}}:delayed*", glob(&self.prefix), glob(s)),
                )
            }))
            .chain(
                self.publishes
                    .iter()
                    .filter(|_| self.priority)
                    .flat_map(|s| {
                        let (p, g) = (glob(&self.prefix), glob(s));
                        [
                            (s.as_str(), format!("~{p}:{{{g}}}:lane:*:events")),
                            (s.as_str(), format!("~{p}:{{{g}}}:lanes")),
                        ]
                    }),
            )
            .collect();
        out.sort();
        let registry = format!("~{}:{{schemas}}:registry", glob(&self.prefix));
        out.into_iter()
            .map(|(_, p)| p)
            .chain(std::iter::once(registry))
            .collect()
    }

    /// The commands allowed, as ACL rules (`+xadd`, `+xinfo|groups`, ...), after `-@all`.
    pub fn commands(&self) -> Vec<String> {
        let handling = if self.handles.is_empty() {
            &[][..]
        } else {
            HANDLE
        };
        let delayed = if self.delayed && !self.publishes.is_empty() {
            PUBLISH_DELAYED
        } else {
            &[][..]
        };
        let priority = if self.priority && !self.publishes.is_empty() {
            PUBLISH_PRIORITY
        } else {
            &[][..]
        };
        let mut seen = BTreeSet::new();
        CONNECT
            .iter()
            .chain(PUBLISH)
            .chain(REGISTRY)
            .chain(delayed)
            .chain(priority)
            .chain(handling)
            .filter(|c| seen.insert(**c))
            .map(|c| format!("+{c}"))
            .collect()
    }

    /// The arguments of `ACL SETUSER` (after `SETUSER`) with `password`: the user is switched
    /// on, `password` added to its passwords, its key patterns and channels replaced, every
    /// command denied but those of [`AclRules::commands`]. Applying them again changes nothing.
    pub fn setuser_args(&self, password: &str) -> Vec<String> {
        self.args(&format!(">{password}"))
    }

    fn args(&self, password_rule: &str) -> Vec<String> {
        let mut out = vec![
            self.user.clone(),
            "on".to_owned(),
            password_rule.to_owned(),
            "resetkeys".to_owned(),
        ];
        out.extend(self.key_patterns());
        out.push("resetchannels".to_owned());
        out.push("-@all".to_owned());
        out.extend(self.commands());
        out
    }
}

/// `ACL SETUSER <user> on ><password> resetkeys ~... resetchannels -@all +...` on one line.
impl fmt::Display for AclRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ACL SETUSER")?;
        for a in self.args(&format!(">{PASSWORD_PLACEHOLDER}")) {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// `s` with the characters special in Redis glob patterns (`* ? [ ] \`) escaped. Checked names
/// have none; this keeps a pattern literal should the rules ever allow one.
fn glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Runtime {
    /// The ACL rules of `user` for this runtime: its prefix, the streams it handles and trims
    /// (its handlers' streams and those given `stream_limits`), and `publishes`, the streams
    /// it publishes to (the runtime cannot know them: any code holding a publisher may publish
    /// any event, handlers included). A stream of `publishes` it also handles is handled.
    ///
    /// `tests/acl.rs` runs publishing, handling, retries, dead letters and trimming under a
    /// user created from these rules.
    pub fn acl_rules(&self, user: &str, publishes: &[&str]) -> Result<AclRules, AclError> {
        // The health handle carries every stream the runtime trims (handlers' streams and those
        // given limits): trimming needs the handling commands and keys too.
        let health = self.health();
        rules(
            user,
            self.keys().prefix(),
            publishes.iter().copied(),
            self.handler_streams()
                .into_iter()
                .chain(health.streams.iter().map(String::as_str)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handled_stream_gets_its_family_and_the_handling_commands() {
        let r = rules("inventory", "ops", [], ["assets"]).expect("valid rules");
        assert_eq!(
            r.key_patterns(),
            ["~ops:{assets}:*", "~ops:{schemas}:registry"]
        );
        let c = r.commands();
        for cmd in [
            "+xadd",
            "+xreadgroup",
            "+evalsha",
            "+script|load",
            "+time",
            "+ping",
        ] {
            assert!(c.iter().any(|x| x == cmd), "{cmd} missing from {c:?}");
        }
        assert_eq!(
            c.len(),
            c.iter().collect::<BTreeSet<_>>().len(),
            "no duplicates"
        );
    }

    #[test]
    fn a_published_stream_gets_its_events_key_and_xadd_only() {
        let r = rules("web", "opsconductor", ["orders", "audit"], []).expect("valid rules");
        assert_eq!(
            r.key_patterns(),
            [
                "~opsconductor:{audit}:events",
                "~opsconductor:{orders}:events",
                "~opsconductor:{schemas}:registry"
            ]
        );
        assert_eq!(
            r.commands(),
            [
                "+ping",
                "+info",
                "+command|info",
                "+select",
                "+xadd",
                "+multi",
                "+hset",
                "+hgetall",
                "+exec"
            ]
        );
        assert_eq!(
            r.to_string(),
            "ACL SETUSER web on ><password> resetkeys ~opsconductor:{audit}:events \
             ~opsconductor:{orders}:events ~opsconductor:{schemas}:registry resetchannels -@all \
             +ping +info +command|info +select +xadd +multi +hset +hgetall +exec"
        );
    }

    #[test]
    fn delayed_publishing_adds_the_schedule_keys_and_script_commands() {
        let r = rules("web", "opsconductor", ["orders"], [])
            .expect("valid rules")
            .with_delayed_publishing();
        assert_eq!(
            r.key_patterns(),
            [
                "~opsconductor:{orders}:delayed*",
                "~opsconductor:{orders}:events",
                "~opsconductor:{schemas}:registry"
            ]
        );
        let c = r.commands();
        for cmd in [
            "+xadd", "+evalsha", "+zadd", "+hset", "+zscore", "+hdel", "+time",
        ] {
            assert!(c.iter().any(|x| x == cmd), "{cmd} missing from {c:?}");
        }
        assert!(!c.iter().any(|x| x == "+xreadgroup"));
    }

    #[test]
    fn priority_publishing_adds_the_lanes_and_their_marker() {
        let r = rules("web", "opsconductor", ["orders"], [])
            .expect("valid rules")
            .with_priority_publishing();
        assert_eq!(
            r.key_patterns(),
            [
                "~opsconductor:{orders}:events",
                "~opsconductor:{orders}:lane:*:events",
                "~opsconductor:{orders}:lanes",
                "~opsconductor:{schemas}:registry"
            ]
        );
        assert!(r.commands().iter().any(|c| c == "+sadd"));
        let handled = rules("svc", "p", [], ["a"]).expect("valid rules");
        for cmd in ["+smembers", "+sadd"] {
            assert!(handled.commands().iter().any(|c| c == cmd), "{cmd}");
        }
    }

    #[test]
    fn a_stream_both_published_and_handled_is_handled() {
        let r = rules("svc", "p", ["a", "b"], ["a"]).expect("valid rules");
        assert_eq!(
            r.key_patterns(),
            ["~p:{a}:*", "~p:{b}:events", "~p:{schemas}:registry"]
        );
    }

    #[test]
    fn bad_names_and_no_streams_are_errors() {
        assert!(matches!(
            rules("a b", "p", ["s"], []),
            Err(AclError::User(_))
        ));
        assert!(matches!(
            rules("u", "p*", ["s"], []),
            Err(AclError::Prefix(_))
        ));
        assert!(matches!(
            rules("u", "p", ["s*"], []),
            Err(AclError::Stream(_))
        ));
        assert!(matches!(
            rules("u", "p", [], ["{x}"]),
            Err(AclError::Stream(_))
        ));
        assert_eq!(rules("u", "p", [], []), Err(AclError::NoStreams));
    }

    #[test]
    fn the_password_goes_after_on() {
        let r = rules("u", "p", ["s"], []).expect("valid rules");
        let a = r.setuser_args("pw with space");
        assert_eq!(a[..4], ["u", "on", ">pw with space", "resetkeys"]);
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob(r"a*b?[c]\"), r"a\*b\?\[c\]\\");
        assert_eq!(glob("{assets}"), "{assets}");
    }
}
