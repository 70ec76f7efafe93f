//! Which callers a rule is about: the shared matcher of the policy and
//! rate-limit rules. A rule lists groups, subjects and/or issuers; each
//! list that is present must match (an SRE from Dex is `groups = ["sre"],
//! issuers = ["https://dex"]`), any entry of a list is enough.
//!
//! Groups are bound to their issuer exactly as in tenancy: a group `g`
//! from issuer `i` matches `i#g`, and the bare `g` only when `i` is one of
//! the issuers whose bare group names count.

use std::collections::HashSet;

use crate::build::BuildCtx;
use crate::identity::Principal;
use crate::inbound::tenancy::groups::{QUALIFIER, lookup_names};

/// The callers one rule applies to.
#[derive(Clone, Debug, Default)]
pub struct PrincipalSelector {
    groups: HashSet<String>,
    subjects: HashSet<String>,
    issuers: HashSet<String>,
    bare_group_issuers: HashSet<String>,
}

/// A rule that could never match anyone, or would match everyone by
/// accident.
#[derive(Debug, thiserror::Error)]
pub enum SelectorError {
    #[error(
        "names no callers: list groups, subjects or issuers (a rule for everyone is the `default`)"
    )]
    Empty,
    #[error(
        "groups: {group:?} names issuer {issuer:?}, which is not a configured issuer (issuers: {known}); qualify a group with the issuer exactly as its tokens' iss"
    )]
    UnknownIssuer {
        group: String,
        issuer: String,
        known: String,
    },
    #[error(
        "groups: {0:?} would match no one's groups: no issuer's bare group names count (none has groups_for_tenancy = true); write \"<issuer>#{0}\""
    )]
    UnreachableGroup(String),
    #[error("issuers: {issuer:?} is not a configured issuer (issuers: {known})")]
    UnknownRuleIssuer { issuer: String, known: String },
    #[error(
        "subjects: with several issuers a subject is only unique per issuer: list the issuers these subjects come from too"
    )]
    AmbiguousSubjects,
}

impl PrincipalSelector {
    /// A selector over these lists, checked against the configured issuers.
    pub fn new(
        groups: &[String],
        subjects: &[String],
        issuers: &[String],
        ctx: &BuildCtx,
    ) -> Result<Self, SelectorError> {
        if groups.is_empty() && subjects.is_empty() && issuers.is_empty() {
            return Err(SelectorError::Empty);
        }
        for group in groups {
            match group.rsplit_once(QUALIFIER) {
                Some((issuer, _)) if !ctx.issuers.iter().any(|known| known == issuer) => {
                    return Err(SelectorError::UnknownIssuer {
                        group: group.clone(),
                        issuer: issuer.to_owned(),
                        known: ctx.issuers.join(", "),
                    });
                }
                None if ctx.bare_group_issuers.is_empty() => {
                    return Err(SelectorError::UnreachableGroup(group.clone()));
                }
                _ => {}
            }
        }
        if let Some(unknown) = issuers.iter().find(|i| !ctx.issuers.contains(i)) {
            return Err(SelectorError::UnknownRuleIssuer {
                issuer: unknown.clone(),
                known: ctx.issuers.join(", "),
            });
        }
        if !subjects.is_empty() && issuers.is_empty() && ctx.issuers.len() > 1 {
            return Err(SelectorError::AmbiguousSubjects);
        }
        Ok(Self {
            groups: groups.iter().cloned().collect(),
            subjects: subjects.iter().cloned().collect(),
            issuers: issuers.iter().cloned().collect(),
            bare_group_issuers: ctx.bare_group_issuers.iter().cloned().collect(),
        })
    }

    /// Whether `principal` is one of the callers this rule is about.
    pub fn matches(&self, principal: &Principal) -> bool {
        let group = self.groups.is_empty()
            || lookup_names(principal, &self.bare_group_issuers)
                .iter()
                .any(|name| self.groups.contains(name));
        let subject = self.subjects.is_empty() || self.subjects.contains(&principal.subject);
        let issuer = self.issuers.is_empty() || self.issuers.contains(&principal.issuer);
        group && subject && issuer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(issuers: &[&str], bare: &[&str]) -> BuildCtx {
        BuildCtx {
            issuers: issuers.iter().map(|i| i.to_string()).collect(),
            bare_group_issuers: bare.iter().map(|i| i.to_string()).collect(),
            ..BuildCtx::default()
        }
    }

    fn principal(issuer: &str, subject: &str, groups: &[&str]) -> Principal {
        Principal {
            subject: subject.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            scopes: vec![],
            issuer: issuer.into(),
            client: None,
            audiences: vec![],
            session: None,
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_listed_kind_must_match() {
        let ctx = ctx(&["https://dex", "https://tp"], &["https://dex"]);
        let sre_from_dex =
            PrincipalSelector::new(&strings(&["sre"]), &[], &strings(&["https://dex"]), &ctx)
                .expect("valid");
        assert!(sre_from_dex.matches(&principal("https://dex", "a", &["sre", "x"])));
        assert!(!sre_from_dex.matches(&principal("https://dex", "a", &["dev"])));
        assert!(
            !sre_from_dex.matches(&principal("https://tp", "a", &["sre"])),
            "another issuer's sre is not Dex's"
        );
        let alice =
            PrincipalSelector::new(&[], &strings(&["alice"]), &strings(&["https://tp"]), &ctx)
                .expect("valid");
        assert!(alice.matches(&principal("https://tp", "alice", &[])));
        assert!(!alice.matches(&principal("https://tp", "bob", &[])));
    }

    #[test]
    fn qualified_groups_match_only_their_issuer() {
        let ctx = ctx(&["https://dex", "https://tp"], &[]);
        let ops =
            PrincipalSelector::new(&strings(&["https://tp#ops"]), &[], &[], &ctx).expect("valid");
        assert!(ops.matches(&principal("https://tp", "a", &["ops"])));
        assert!(!ops.matches(&principal("https://dex", "a", &["ops"])));
        assert!(!ops.matches(&principal("https://dex", "a", &["https://tp#ops"])));
    }

    #[test]
    fn rules_that_cannot_work_are_refused() {
        let two = ctx(&["https://dex", "https://tp"], &[]);
        assert!(matches!(
            PrincipalSelector::new(&[], &[], &[], &two),
            Err(SelectorError::Empty)
        ));
        assert!(matches!(
            PrincipalSelector::new(&strings(&["sre"]), &[], &[], &two),
            Err(SelectorError::UnreachableGroup(_))
        ));
        assert!(matches!(
            PrincipalSelector::new(&strings(&["https://x#sre"]), &[], &[], &two),
            Err(SelectorError::UnknownIssuer { .. })
        ));
        assert!(matches!(
            PrincipalSelector::new(&[], &[], &strings(&["https://dex/"]), &two),
            Err(SelectorError::UnknownRuleIssuer { .. })
        ));
        assert!(matches!(
            PrincipalSelector::new(&[], &strings(&["alice"]), &[], &two),
            Err(SelectorError::AmbiguousSubjects)
        ));
        let opted_out = ctx(&["https://dex"], &[]);
        assert!(matches!(
            PrincipalSelector::new(&strings(&["sre"]), &[], &[], &opted_out),
            Err(SelectorError::UnreachableGroup(_))
        ));
    }
}
