//! Outbound tenant header: the one place that decides and writes
//! `X-Scope-OrgID`. From the request's [`TenantSet`] (validating every
//! ID), else the upstream's fixed `org_id`; it refuses (fails closed) a
//! request that carries no tenant set while tenancy is enforced. Under
//! label tenancy ([`TenantLayer::by_label`]) the caller's tenants travel
//! as a label matcher instead, and only the upstream's fixed `org_id` is
//! written.

use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request};
use tower::{Layer, Service};

use crate::BoxError;
use crate::identity::{CallerChosenTenants, Probe, TenantSet};
use crate::refuse::RefuseOr;
use crate::tenant_id::{self, TenantIdError};

/// The header Mimir reads the tenant from.
pub static SCOPE_ORG_ID: HeaderName = HeaderName::from_static("x-scope-orgid");

/// Why a request was not sent.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(
        "no tenant scope on this request while tenancy is enforced (refusing to query without one)"
    )]
    Missing,
    #[error("no tenant selected")]
    Empty,
    #[error("{count} tenants in one request is more than the allowed {max}; narrow org_id")]
    TooMany { count: usize, max: usize },
    #[error(
        "org_id: this upstream does not let callers choose the tenant ({fixed}); the operator can allow it with allow_org_id_override = true on the upstream"
    )]
    NotChoosable { fixed: String },
    #[error(transparent)]
    Invalid(#[from] TenantIdError),
}

/// Writes `X-Scope-OrgID`.
#[derive(Clone, Debug)]
pub struct TenantLayer {
    enforce: bool,
    max_tenants: usize,
    /// The upstream's own `org_id`, sent when a request names no tenants
    /// and tenancy is not enforced.
    fixed: Option<HeaderValue>,
    /// Whether a caller's `org_id` may pick the tenant while tenancy is
    /// off (the Go server always allowed it, unauthenticated).
    allow_override: bool,
    /// Label tenancy: the tenant label layer scopes (and fails closed);
    /// this layer writes only the fixed `org_id`.
    by_label: bool,
}

impl TenantLayer {
    /// `enforce`: refuse requests without a [`TenantSet`].
    pub fn new(enforce: bool, max_tenants: usize) -> Self {
        Self {
            enforce,
            max_tenants,
            fixed: None,
            allow_override: false,
            by_label: false,
        }
    }

    /// This layer under label tenancy: the caller's tenants are never
    /// written (they are a label matcher, added by the tenant label layer,
    /// which also refuses a request without them); the upstream's fixed
    /// `org_id`, if any, is sent on every request.
    pub fn by_label(mut self) -> Self {
        self.by_label = true;
        self
    }

    /// This layer for an upstream with a fixed `org_id` (validated with
    /// the config) and its `allow_org_id_override`.
    pub fn for_upstream(mut self, org_id: Option<&str>, allow_override: bool) -> Self {
        self.fixed = org_id.and_then(|id| HeaderValue::from_str(id).ok());
        self.allow_override = allow_override;
        self
    }
}

impl<S> Layer<S> for TenantLayer {
    type Service = Tenant<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Tenant {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`TenantLayer`].
#[derive(Clone, Debug)]
pub struct Tenant<S> {
    inner: S,
    layer: TenantLayer,
}

impl TenantLayer {
    fn header(
        &self,
        tenants: Option<&TenantSet>,
        caller_chosen: bool,
    ) -> Result<Option<HeaderValue>, TenantError> {
        if self.by_label {
            return Ok(self.fixed.clone());
        }
        let Some(tenants) = tenants else {
            return if self.enforce {
                Err(TenantError::Missing)
            } else {
                Ok(self.fixed.clone())
            };
        };
        if caller_chosen && !self.enforce && !self.allow_override {
            return Err(TenantError::NotChoosable {
                fixed: match &self.fixed {
                    Some(_) => "it always sends its own X-Scope-OrgID",
                    None => "it sends no X-Scope-OrgID",
                }
                .to_owned(),
            });
        }
        if tenants.is_empty() {
            return Err(TenantError::Empty);
        }
        if tenants.as_slice().len() > self.max_tenants {
            return Err(TenantError::TooMany {
                count: tenants.as_slice().len(),
                max: self.max_tenants,
            });
        }
        for tenant in tenants.as_slice() {
            tenant_id::validate(tenant)?;
        }
        HeaderValue::from_str(&tenants.header_value())
            .map(Some)
            .map_err(|_| TenantError::Invalid(TenantIdError::Empty))
    }
}

impl<S, B> Service<Request<B>> for Tenant<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = RefuseOr<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if req.extensions().get::<Probe>().is_some()
            && req.extensions().get::<TenantSet>().is_none()
        {
            req.headers_mut().remove(&SCOPE_ORG_ID);
            return RefuseOr::inner(self.inner.call(req));
        }
        let caller_chosen = req.extensions().get::<CallerChosenTenants>().is_some();
        match self
            .layer
            .header(req.extensions().get::<TenantSet>(), caller_chosen)
        {
            Ok(Some(value)) => {
                req.headers_mut().insert(SCOPE_ORG_ID.clone(), value);
            }
            Ok(None) => {
                req.headers_mut().remove(&SCOPE_ORG_ID);
            }
            Err(error) => return RefuseOr::error(error),
        }
        RefuseOr::inner(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    async fn sent(
        layer: TenantLayer,
        tenants: Option<TenantSet>,
        preset: Option<&str>,
    ) -> Result<Option<String>, String> {
        sent_marked(layer, tenants, preset, false).await
    }

    /// What the layer writes; `caller_chosen` marks the tenants as the
    /// caller's `org_id` with tenancy off.
    async fn sent_marked(
        layer: TenantLayer,
        tenants: Option<TenantSet>,
        preset: Option<&str>,
        caller_chosen: bool,
    ) -> Result<Option<String>, String> {
        let svc = layer.layer(tower::service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(
                req.headers()
                    .get(&SCOPE_ORG_ID)
                    .map(|v| v.to_str().expect("ascii").to_owned()),
            )
        }));
        let mut req = Request::new(());
        if let Some(tenants) = tenants {
            req.extensions_mut().insert(tenants);
        }
        if caller_chosen {
            req.extensions_mut().insert(CallerChosenTenants);
        }
        if let Some(preset) = preset {
            req.headers_mut().insert(
                SCOPE_ORG_ID.clone(),
                HeaderValue::from_str(preset).expect("value"),
            );
        }
        svc.oneshot(req).await.map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn writes_the_joined_set_over_any_preset_value() {
        let header = sent(
            TenantLayer::new(true, 16),
            Some(TenantSet::new(["b", "a"])),
            Some("evil"),
        )
        .await;
        assert_eq!(header, Ok(Some("a|b".into())));
    }

    #[tokio::test]
    async fn fails_closed_without_a_set() {
        let err = sent(TenantLayer::new(true, 16), None, Some("static"))
            .await
            .expect_err("refused");
        assert!(err.contains("no tenant scope"), "{err}");
        let fixed = TenantLayer::new(false, 16).for_upstream(Some("static"), false);
        let header = sent(fixed.clone(), None, None).await;
        assert_eq!(
            header,
            Ok(Some("static".into())),
            "tenancy off sends the upstream's own org_id"
        );
        let header = sent(TenantLayer::new(false, 16), None, Some("smuggled")).await;
        assert_eq!(header, Ok(None), "only this layer writes the header");
        let err = sent(
            TenantLayer::new(true, 16).for_upstream(Some("static"), false),
            None,
            None,
        )
        .await
        .expect_err("refused");
        assert!(
            err.contains("no tenant scope"),
            "a fixed org_id does not open enforced tenancy: {err}"
        );
    }

    #[tokio::test]
    async fn exempt_requests_pass_without_a_tenant_header() {
        let svc =
            TenantLayer::new(true, 16).layer(tower::service_fn(|req: Request<()>| async move {
                Ok::<_, Infallible>(req.headers().get(&SCOPE_ORG_ID).is_some())
            }));
        let mut req = Request::new(());
        req.extensions_mut().insert(Probe);
        req.headers_mut()
            .insert(SCOPE_ORG_ID.clone(), HeaderValue::from_static("static"));
        assert!(!svc.oneshot(req).await.expect("passes"));
    }

    #[tokio::test]
    async fn refuses_bad_ids_and_too_many() {
        for bad in ["a|b", "a\r\nx", "ü", ""] {
            let err = sent(
                TenantLayer::new(true, 16),
                Some(TenantSet::new([bad])),
                None,
            )
            .await;
            assert!(err.is_err(), "{bad:?}");
        }
        let err = sent(
            TenantLayer::new(true, 2),
            Some(TenantSet::new(["a", "b", "c"])),
            None,
        )
        .await
        .expect_err("too many");
        assert!(err.contains("more than the allowed 2"), "{err}");
    }

    #[tokio::test]
    async fn under_label_tenancy_only_the_fixed_org_id_is_written() {
        let labels = TenantLayer::new(true, 16).by_label();
        let header = sent(
            labels.clone(),
            Some(TenantSet::new(["a", "b"])),
            Some("evil"),
        )
        .await;
        assert_eq!(header, Ok(None), "the caller's tenants are a label matcher");
        let fixed = labels.for_upstream(Some("platform"), false);
        let header = sent(fixed.clone(), Some(TenantSet::new(["a"])), None).await;
        assert_eq!(header, Ok(Some("platform".into())));
        assert_eq!(
            sent(fixed, None, Some("evil")).await,
            Ok(Some("platform".into()))
        );
    }

    #[tokio::test]
    async fn a_callers_org_id_needs_the_upstreams_consent() {
        let send =
            |layer: TenantLayer| sent_marked(layer, Some(TenantSet::new(["team-b"])), None, true);
        let fixed = TenantLayer::new(false, 16).for_upstream(Some("platform"), false);
        let err = send(fixed).await.expect_err("fixed stays fixed");
        assert!(
            err.contains("its own X-Scope-OrgID") && err.contains("allow_org_id_override"),
            "{err}"
        );
        assert!(
            !err.contains("platform"),
            "the fixed tenant stays private: {err}"
        );
        let open = TenantLayer::new(false, 16).for_upstream(None, false);
        assert!(send(open).await.is_err(), "no consent, no choice");
        let allowed = TenantLayer::new(false, 16).for_upstream(Some("platform"), true);
        assert_eq!(send(allowed).await, Ok(Some("team-b".into())));
    }
}
