//! Groups are bound to their issuer: the same group name from two issuers
//! (a Teleport role `team-ops` and Dex's `team-ops`) is not the same
//! group. A caller's group `g` from issuer `i` is looked up as `i#g`
//! always, and as the bare `g` only when `i` opts in
//! (`groups_for_tenancy`, the default when there is a single issuer).

use std::collections::HashSet;

use super::{TenancyConfig, TenancyConfigError, TenancyMode, invalid};
use crate::build::BuildCtx;
use crate::identity::Principal;

/// Separates an issuer from a group in a qualified group name.
pub(crate) const QUALIFIER: char = '#';

/// The names a principal's groups are looked up by.
pub(crate) fn lookup_names(principal: &Principal, bare_issuers: &HashSet<String>) -> Vec<String> {
    let bare = bare_issuers.contains(&principal.issuer);
    principal
        .groups
        .iter()
        .flat_map(|group| {
            let qualified = format!("{}{QUALIFIER}{group}", principal.issuer);
            // A group named like a qualified one ("https://other#admins")
            // must not pass for another issuer's group.
            let unqualified = bare && !group.contains(QUALIFIER);
            [Some(qualified), unqualified.then(|| group.clone())]
        })
        .flatten()
        .collect()
}

/// Refuses unqualified group names that no issuer's groups could reach:
/// several issuers and none opted in.
pub(super) fn check(config: &TenancyConfig, ctx: &BuildCtx) -> Result<(), TenancyConfigError> {
    if ctx.authn_enabled {
        for key in config.groups.keys() {
            if let Some((issuer, _)) = key.rsplit_once(QUALIFIER)
                && !ctx.issuers.iter().any(|known| known == issuer)
            {
                return Err(invalid(
                    format!("groups.{key}"),
                    format!(
                        "{issuer:?} is not a configured issuer (issuers: {}); qualify a group with the issuer exactly as its tokens' iss",
                        ctx.issuers.join(", ")
                    ),
                ));
            }
        }
    }
    if !ctx.bare_group_issuers.is_empty() {
        return Ok(());
    }
    let bare_key = config.groups.keys().find(|g| !g.contains(QUALIFIER));
    match (config.mode, bare_key) {
        (TenancyMode::GroupMap, Some(group)) => Err(invalid(
            format!("groups.{group}"),
            format!(
                "several issuers are configured and none has groups_for_tenancy = true, so {group:?} would match no one's groups: write \"<issuer>{QUALIFIER}{group}\", or set groups_for_tenancy = true on the issuer whose groups these are"
            ),
        )),
        (TenancyMode::GrafanaOrganization, _) => Err(invalid(
            "mode",
            "several issuers are configured and none has groups_for_tenancy = true, so GrafanaOrganization groups would match no one: set groups_for_tenancy = true on the issuer whose groups they are",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(issuer: &str, groups: &[&str]) -> Principal {
        Principal {
            subject: "s".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            scopes: vec![],
            issuer: issuer.into(),
            client: None,
            audiences: vec![],
            session: None,
        }
    }

    #[test]
    fn bare_names_only_for_opted_in_issuers() {
        let bare: HashSet<String> = ["https://dex".to_owned()].into();
        assert_eq!(
            lookup_names(&principal("https://dex", &["ops"]), &bare),
            ["https://dex#ops", "ops"]
        );
        assert_eq!(
            lookup_names(&principal("https://teleport", &["ops"]), &bare),
            ["https://teleport#ops"]
        );
        assert_eq!(
            lookup_names(&principal("https://dex", &["https://teleport#ops"]), &bare),
            ["https://dex#https://teleport#ops"],
            "a group named like another issuer's is only ever its own"
        );
    }
}
