//! `opsc acl`: the ACL rules of a service, from the arguments alone (nothing is sent to Redis).

use serde_json::json;

use super::CliError;
use super::args::AclArgs;
use super::commands::Out;

/// Prints the `ACL SETUSER` line (or, with `--json`, the user, key patterns, commands and line).
pub(super) fn print(out: &Out, prefix: &str, a: &AclArgs) -> Result<(), CliError> {
    let user = a.user.as_deref().unwrap_or(&a.service);
    let rules = crate::acl::rules(
        user,
        prefix,
        a.publish.iter().map(String::as_str),
        a.stream.iter().map(String::as_str),
    )?;
    out.line(
        json!({
            "user": rules.user(),
            "keys": rules.key_patterns(),
            "commands": rules.commands(),
            "acl_setuser": rules.to_string(),
        }),
        || rules.to_string(),
    )
}
