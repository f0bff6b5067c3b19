//! The value parsers of `opsc`'s arguments: every value is checked here, while the command line
//! is parsed, so a mistake is a usage error (exit 2) named after its argument, found before the
//! first Redis command. Names follow the runtime's rules (`crate::keys`); every rule and limit is
//! listed in `docs/WIRE.md` § Names and limits.

use std::ffi::OsStr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

use crate::dead_letter::DeadLetterReason;
use crate::error::redact_url;
use crate::keys::{GROUP_NAME, InvalidName, KEY_PREFIX, NameProblem, SERVICE_NAME, STREAM_NAME};
use crate::message_id::MessageId;

/// Where errors send the reader for the rules.
const SEE: &str = "see docs/WIRE.md § Names and limits";

/// The most entries `dlq list|replay|purge --limit` may name (per stream).
pub(crate) const MAX_LIMIT: u64 = 1_000_000;
/// The most entries `tail --count` may name.
pub(crate) const MAX_COUNT: u64 = 1_000_000_000;
/// The most entries `schema --scan` may name (per stream).
pub(crate) const MAX_SCAN: u64 = 10_000_000;
/// The longest age `--since` / `--until` accept: 100 years.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Every dead-letter reason a filter may name, in wire form.
pub(crate) const REASONS: [DeadLetterReason; 7] = [
    DeadLetterReason::HandlerError,
    DeadLetterReason::Permanent,
    DeadLetterReason::Timeout,
    DeadLetterReason::Panic,
    DeadLetterReason::Crashed,
    DeadLetterReason::DecodeError,
    DeadLetterReason::SchemaMismatch,
];

/// A value that is not what its argument takes (names have their own [`InvalidName`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    /// Not a dead-letter reason.
    #[error(
        "unknown dead-letter reason; expected one of {} ({SEE})",
        REASONS.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
    )]
    Reason,
    /// Not a time.
    #[error(
        "{0}; expected milliseconds since the epoch (13 digits, e.g. `1700000000000`) or an age: \
         a whole number and a unit `s`, `m`, `h` or `d` (e.g. `30m`, `7d`), at most 36500d ({SEE})"
    )]
    Time(&'static str),
    /// Not a duration.
    #[error(
        "{0}; expected a whole number and a unit `ms`, `s`, `m`, `h` or `d` (e.g. `90s`, `1h`), \
         from 1ms to 36500d ({SEE})"
    )]
    Duration(&'static str),
    /// Not a due time.
    #[error(
        "{0}; expected milliseconds since the epoch (13 digits, e.g. `1800000000000`) or a time \
         from now: a whole number and a unit `s`, `m`, `h` or `d` (e.g. `2h`), at most 36500d ({SEE})"
    )]
    Due(&'static str),
    /// Not an event id.
    #[error(
        "{0}; expected an event id, a UUID such as `0191c6d2-7b0e-7f3a-8c1e-5b8f2a9d4e61` ({SEE})"
    )]
    EventId(&'static str),
    /// Not a stream entry id.
    #[error("{0}; expected a stream entry id `<ms>-<seq>` (e.g. `1700000000000-0`) ({SEE})")]
    EntryId(&'static str),
    /// Not a position of `groups reset --to`.
    #[error(
        "{0}; expected `latest`, `earliest` or a stream entry id `<ms>-<seq>` (e.g. \
         `1700000000000-0`) ({SEE})"
    )]
    ResetTo(&'static str),
    /// Not an ACL user name (the service name's rule).
    #[error(
        "invalid user name: {0}; expected 1 to 64 of `A-Z a-z 0-9 _ . -`, the service name's \
         rule ({SEE})"
    )]
    User(NameProblem),
    /// Not a readable file.
    #[error("{0}; expected the path of a readable file ({SEE})")]
    File(&'static str),
    /// Not a whole number in range.
    #[error("{problem}; expected a whole number from 1 to {max} ({SEE})")]
    Number {
        /// What is wrong.
        problem: &'static str,
        /// The largest value allowed.
        max: u64,
    },
}

/// `--stream` and the `STREAM` arguments.
pub(crate) fn stream(s: &str) -> Result<String, InvalidName> {
    STREAM_NAME.check(s).map(|()| s.to_owned())
}

/// `delayed list --type`.
pub(crate) fn event_type(s: &str) -> Result<String, InvalidName> {
    crate::keys::EVENT_TYPE.check(s).map(|()| s.to_owned())
}

/// `--group`.
pub(crate) fn group(s: &str) -> Result<String, InvalidName> {
    GROUP_NAME.check(s).map(|()| s.to_owned())
}

/// `--tls-ca`, `--tls-cert`, `--tls-key`, `--password-file`: a file that exists (read at
/// connect; checked here so that a typo is a usage error before anything is sent).
pub(crate) fn file(s: &str) -> Result<std::path::PathBuf, ValueError> {
    if s.is_empty() {
        return Err(ValueError::File("empty"));
    }
    let path = std::path::PathBuf::from(s);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(ValueError::File("not a file")),
        Err(_) => Err(ValueError::File("no such file")),
    }
}

/// `acl --service`.
pub(crate) fn service(s: &str) -> Result<String, InvalidName> {
    SERVICE_NAME.check(s).map(|()| s.to_owned())
}

/// `acl --user`: the service name's rule (the default user is the service name).
pub(crate) fn acl_user(s: &str) -> Result<String, ValueError> {
    SERVICE_NAME
        .check(s)
        .map(|()| s.to_owned())
        .map_err(|e| ValueError::User(e.problem))
}

/// `--prefix`.
pub(crate) fn prefix(s: &str) -> Result<String, InvalidName> {
    KEY_PREFIX.check(s).map(|()| s.to_owned())
}

/// `--reason`: one of the reasons the runtime writes; a reason of a newer version is refused
/// rather than matched blindly.
pub(crate) fn reason(s: &str) -> Result<DeadLetterReason, ValueError> {
    REASONS
        .iter()
        .find(|r| r.as_str() == s)
        .cloned()
        .ok_or(ValueError::Reason)
}

/// `--after` and the dead-letter `ID` argument.
pub(crate) fn entry_id(s: &str) -> Result<MessageId, ValueError> {
    let Some((ms, seq)) = s.split_once('-') else {
        return Err(ValueError::EntryId("no `-` between the two numbers"));
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(ms) || !digits(seq) {
        return Err(ValueError::EntryId(
            "both parts must be whole numbers without sign",
        ));
    }
    s.parse()
        .map_err(|_| ValueError::EntryId("a part is larger than 18446744073709551615"))
}

/// `groups reset --to`: `latest`, `earliest` or an entry id.
pub(crate) fn reset_to(s: &str) -> Result<super::groups::ResetTo, ValueError> {
    use super::groups::ResetTo;
    match s {
        "latest" => Ok(ResetTo::Latest),
        "earliest" => Ok(ResetTo::Earliest),
        "" => Err(ValueError::ResetTo("it is empty")),
        _ => entry_id(s)
            .map(ResetTo::After)
            .map_err(|_| ValueError::ResetTo("not a position")),
    }
}

/// A point in time as `--since` / `--until` give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Time {
    /// Milliseconds since the epoch.
    At(u64),
    /// This long before the command runs.
    Ago(Duration),
}

impl Time {
    /// Milliseconds since the epoch, ages counted back from `now_ms`.
    pub(crate) fn resolve(self, now_ms: u64) -> u64 {
        match self {
            Time::At(ms) => ms,
            Time::Ago(d) => now_ms.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// `--since` / `--until`: 13-digit milliseconds since the epoch, or an age such as `30m`. A
/// shorter number is refused: `1700000000` (seconds) read as milliseconds would select
/// everything since 1970, and `dlq purge` would act on it.
pub(crate) fn time(s: &str) -> Result<Time, ValueError> {
    if s.is_empty() {
        return Err(ValueError::Time("it is empty"));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    if n.is_empty() {
        return Err(ValueError::Time("it does not start with a number"));
    }
    if unit.is_empty() {
        if n.len() != 13 {
            return Err(ValueError::Time(
                "a plain number must have 13 digits (milliseconds; seconds have 10)",
            ));
        }
        return n
            .parse()
            .map(Time::At)
            .map_err(|_| ValueError::Time("not a number"));
    }
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(ValueError::Time("unknown unit")),
    };
    let age = n
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_AGE)
        .ok_or(ValueError::Time("the age is too long"))?;
    Ok(Time::Ago(age))
}

/// `delayed list --due-before/--due-after`: 13-digit milliseconds since the epoch, or a time
/// from now such as `2h` (the form of `--since`, counted forward); milliseconds since the epoch.
pub(crate) fn due(s: &str) -> Result<Due, ValueError> {
    match time(s) {
        Ok(Time::At(ms)) => Ok(Due::At(ms)),
        Ok(Time::Ago(d)) => Ok(Due::In(d)),
        Err(ValueError::Time(why)) => Err(ValueError::Due(why)),
        Err(other) => Err(other),
    }
}

/// A due time of `delayed list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Milliseconds since the epoch.
    At(u64),
    /// This long after the command runs.
    In(Duration),
}

impl Due {
    /// Milliseconds since the epoch.
    pub(crate) fn resolve(self, now_ms: u64) -> u64 {
        match self {
            Due::At(ms) => ms,
            Due::In(d) => now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// An event id: a UUID in its hyphenated form.
pub(crate) fn event_id(s: &str) -> Result<uuid::Uuid, ValueError> {
    if s.is_empty() {
        return Err(ValueError::EventId("it is empty"));
    }
    if s.len() != 36 {
        return Err(ValueError::EventId("not 36 characters"));
    }
    uuid::Uuid::parse_str(s).map_err(|_| ValueError::EventId("not a UUID"))
}

/// `groups --stale-after`: a whole number and a unit (`ms`, `s`, `m`, `h`, `d`), the same form
/// as the ages of `--since` plus milliseconds; zero is refused (every group would be stale).
pub(crate) fn duration(s: &str) -> Result<Duration, ValueError> {
    if s.is_empty() {
        return Err(ValueError::Duration("it is empty"));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    if n.is_empty() {
        return Err(ValueError::Duration("it does not start with a number"));
    }
    let unit_ms: u64 = match unit {
        "" => return Err(ValueError::Duration("it has no unit")),
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(ValueError::Duration("unknown unit")),
    };
    let d = n
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX_AGE)
        .ok_or(ValueError::Duration("it is too long"))?;
    if d.is_zero() {
        return Err(ValueError::Duration("zero would make every group stale"));
    }
    Ok(d)
}

fn number(s: &str, max: u64) -> Result<u64, ValueError> {
    let err = |problem| ValueError::Number { problem, max };
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("not a whole number"));
    }
    match s.parse::<u64>() {
        Ok(0) => Err(err("zero selects nothing")),
        Ok(n) if n <= max => Ok(n),
        _ => Err(err("too large")),
    }
}

fn to_usize(n: u64) -> usize {
    // Every maximum fits in 32 bits.
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `dlq --limit`: 1 to [`MAX_LIMIT`].
pub(crate) fn limit(s: &str) -> Result<usize, ValueError> {
    number(s, MAX_LIMIT).map(to_usize)
}

/// `tail --count`: 1 to [`MAX_COUNT`].
pub(crate) fn count(s: &str) -> Result<usize, ValueError> {
    number(s, MAX_COUNT).map(to_usize)
}

/// `schema --scan`: 1 to [`MAX_SCAN`].
pub(crate) fn scan(s: &str) -> Result<usize, ValueError> {
    number(s, MAX_SCAN).map(to_usize)
}

/// `--redis` (and `REDIS_URL`): a URL the Redis client accepts. Its own error text, because
/// clap's would repeat the value with its password.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedisUrl;

impl TypedValueParser for RedisUrl {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        let name = arg.map_or_else(|| "--redis".to_owned(), |a| a.to_string());
        let fail = |shown: &str, why: &str| {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!(
                    "invalid value '{shown}' for '{name}': {why}; expected a Redis URL such as \
                     `redis://127.0.0.1:6379` or `redis://user:password@host:6379/0` ({SEE})\n"
                ),
            )
            .with_cmd(cmd)
        };
        let Some(url) = value.to_str() else {
            return Err(fail("<not UTF-8>", "not UTF-8"));
        };
        let shown = redact_url(url);
        if url.is_empty() {
            return Err(fail(&shown, "it is empty"));
        }
        match redis::Client::open(url) {
            Ok(_) => Ok(url.to_owned()),
            Err(e) => {
                let why = e.to_string().replace(url, &shown);
                // Should the client's message ever quote the password, say only the kind.
                let why = match secret(url) {
                    Some(secret) if why.contains(secret) => format!("{:?}", e.kind()),
                    _ => why,
                };
                Err(fail(&shown, &format!("not a Redis URL: {why}")))
            }
        }
    }
}

/// The password (or lone user-info) of `url`, if it has one.
fn secret(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let userinfo = &rest[..rest[..rest.find('/').unwrap_or(rest.len())].rfind('@')?];
    let secret = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!secret.is_empty()).then_some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_epoch_milliseconds_or_ages() {
        assert_eq!(time("1700000000000"), Ok(Time::At(1_700_000_000_000)));
        assert_eq!(time("30m"), Ok(Time::Ago(Duration::from_secs(1800))));
        assert_eq!(time("0s"), Ok(Time::Ago(Duration::ZERO)));
        assert_eq!(time("36500d"), Ok(Time::Ago(MAX_AGE)));
        for bad in [
            "",
            "garbage-value",
            "1700000000",
            "-5m",
            "30x",
            "5 m",
            "1.5h",
            "m",
            "36501d",
            "99999999999999999999d",
            "30M",
        ] {
            assert!(time(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Time::Ago(Duration::from_secs(1)).resolve(5_000), 4_000);
        assert_eq!(Time::Ago(MAX_AGE).resolve(5), 0);
    }

    #[test]
    fn durations_have_a_unit_and_are_positive() {
        assert_eq!(duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("36500d"), Ok(MAX_AGE));
        for bad in [
            "",
            "0s",
            "0ms",
            "1",
            "h",
            "-1h",
            "1.5h",
            "1 h",
            "1H",
            "1us",
            "36501d",
            "99999999999999999999d",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn numbers_are_positive_and_bounded() {
        assert_eq!(limit("1"), Ok(1));
        assert_eq!(limit("1000000"), Ok(1_000_000));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.5",
            "1000001",
            "99999999999999999999999",
        ] {
            assert!(limit(bad).is_err(), "{bad:?} accepted");
        }
        assert!(count("1000000000").is_ok());
        assert!(scan("10000001").is_err());
    }

    #[test]
    fn ids_and_reasons_are_parsed_strictly() {
        assert_eq!(entry_id("1-2"), Ok(MessageId::new(1, 2)));
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "1-2-3",
            "a-1",
            "+1-0",
            "99999999999999999999-0",
        ] {
            assert!(entry_id(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(reason("timeout"), Ok(DeadLetterReason::Timeout));
        assert_eq!(reason("Timeout"), Err(ValueError::Reason));
        assert!(ValueError::Reason.to_string().contains("`schema_mismatch`"));
    }

    #[test]
    fn url_errors_hide_the_password() {
        let cmd = clap::Command::new("opsc");
        let err = RedisUrl
            .parse_ref(&cmd, None, OsStr::new("redis://:s3cret@host:notaport"))
            .expect_err("a port that is not a number");
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("--redis"), "{text}");
        assert_eq!(secret("redis://u:pw@h/0"), Some("pw"));
        assert_eq!(secret("redis://pw@h"), Some("pw"));
        assert_eq!(secret("redis://h:1/0"), None);
        assert!(
            RedisUrl
                .parse_ref(&cmd, None, OsStr::new("redis://127.0.0.1:6379"))
                .is_ok()
        );
    }
}
