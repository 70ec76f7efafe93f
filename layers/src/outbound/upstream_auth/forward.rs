//! What a forwarded credential may be: only a header authn verified (or one
//! the operator knowingly forwards unverified), and never into a header
//! that frames the request, routes it, or names its tenant.

use http::HeaderName;

use super::UpstreamAuthConfigError;
use crate::build::BuildCtx;

/// Headers a forwarded credential may not be written to (or read from):
/// request framing, hop-by-hop headers, routing, and the tenant header,
/// which only the tenant layer writes.
const NEVER_FORWARDED: &[&str] = &[
    "x-scope-orgid",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "traceparent",
];

/// Checks a `forward` credential's headers at build time.
pub(super) fn check(
    from: &HeaderName,
    to: &HeaderName,
    forward_unverified: bool,
    ctx: &BuildCtx,
) -> Result<(), UpstreamAuthConfigError> {
    for (key, name) in [("header", from), ("to", to)] {
        if NEVER_FORWARDED.contains(&name.as_str()) {
            return Err(UpstreamAuthConfigError::ForbiddenHeader {
                key,
                name: name.to_string(),
            });
        }
    }
    if !forward_unverified && !ctx.verified_headers.contains(from) {
        return Err(UpstreamAuthConfigError::Unverified {
            name: from.to_string(),
            verified: if ctx.verified_headers.is_empty() {
                "none: [layers.authn] is off".to_owned()
            } else {
                ctx.verified_headers
                    .iter()
                    .map(HeaderName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::AUTHORIZATION;

    fn ctx(verified: &[&str]) -> BuildCtx {
        BuildCtx {
            verified_headers: verified
                .iter()
                .map(|h| HeaderName::try_from(*h).expect("name"))
                .collect(),
            ..BuildCtx::default()
        }
    }

    #[test]
    fn framing_routing_and_tenant_headers_are_never_targets() {
        for bad in [
            "x-scope-orgid",
            "host",
            "content-length",
            "connection",
            "te",
            "upgrade",
        ] {
            let name = HeaderName::try_from(bad).expect("name");
            let err = check(&AUTHORIZATION, &name, false, &ctx(&["authorization"]))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("auth.to") && err.contains(bad), "{err}");
            assert!(
                check(&name, &AUTHORIZATION, true, &ctx(&[])).is_err(),
                "{bad} as the source"
            );
        }
    }

    #[test]
    fn only_verified_headers_unless_the_operator_says_so() {
        let teleport = HeaderName::from_static("teleport-jwt-assertion");
        let err = check(&teleport, &AUTHORIZATION, false, &ctx(&["authorization"]))
            .expect_err("not verified")
            .to_string();
        assert!(
            err.contains("forward_unverified") && err.contains("authorization"),
            "{err}"
        );
        assert!(
            check(
                &teleport,
                &AUTHORIZATION,
                false,
                &ctx(&["teleport-jwt-assertion"])
            )
            .is_ok()
        );
        assert!(check(&teleport, &AUTHORIZATION, true, &ctx(&[])).is_ok());
        let err = check(&AUTHORIZATION, &AUTHORIZATION, false, &ctx(&[]))
            .expect_err("authn off")
            .to_string();
        assert!(err.contains("[layers.authn] is off"), "{err}");
    }
}
