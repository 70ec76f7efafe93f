//! The guardrails service: reads the request's query, applies the rules,
//! runs the series pre-checks when a selector needs one, then refuses
//! (`enforce`) or passes the request on with its decisions recorded on the
//! answer (`warn`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::decision::{
    GuardrailAction, GuardrailDecision, GuardrailDecisions, GuardrailRefusal, GuardrailRule,
};
use super::precheck::{self, Estimate, Template};
use super::rules::{self, Checked, Finding, human};
use super::{Shared, request};
use crate::BoxError;

/// Pre-checks run for one request at most; further bare selectors go
/// unchecked (a query with more is rare, and each costs a round trip).
const MAX_PRECHECKS: usize = 8;

/// Service of [`super::GuardrailsLayer`].
#[derive(Clone)]
pub struct Guardrails<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Guardrails<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

type Boxed<B> = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

impl<S, B> Service<Request<Full<Bytes>>> for Guardrails<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = GuardrailsFuture<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<Full<Bytes>>) -> Self::Future {
        let Some(query) = request::read(&mut req) else {
            return GuardrailsFuture::passed(self.inner.call(req), Vec::new());
        };
        let checked = rules::check(&self.shared.limits, &query);
        // In enforce mode a query already broken is refused without asking
        // the upstream anything.
        let refused_anyway = self.shared.enforce && !checked.findings.is_empty();
        if checked.precheck.is_empty() || refused_anyway {
            return match self.shared.decide(checked.findings, Vec::new()) {
                Ok(decisions) => GuardrailsFuture::passed(self.inner.call(req), decisions),
                Err(refusal) => GuardrailsFuture::Refused {
                    error: Some(refusal.into()),
                },
            };
        }
        // The ready service answers the request; a clone sends the pre-checks.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        GuardrailsFuture::Checking {
            future: Box::pin(checked_then_sent(shared, inner, req, checked)),
        }
    }
}

/// Runs the pre-checks, decides, and sends the request unless refused.
async fn checked_then_sent<S, B>(
    shared: Arc<Shared>,
    inner: S,
    req: Request<Full<Bytes>>,
    checked: Checked,
) -> Result<Response<B>, BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let template = Template::of(&req);
    let deadline = Instant::now() + shared.precheck_timeout;
    let mut findings = checked.findings;
    let mut unchecked = Vec::new();
    for selector in checked.precheck.iter().take(MAX_PRECHECKS) {
        let key = template.key(selector);
        let estimate = match shared.cache.get(&key) {
            Some(estimate) => estimate,
            None => {
                let left = deadline.saturating_duration_since(Instant::now());
                match template.request(selector, shared.precheck_timeout) {
                    Some(_) if left.is_zero() => {
                        Estimate::Failed("no time left for it in precheck_timeout".into())
                    }
                    Some(check) => {
                        let counted = precheck::count(inner.clone(), check);
                        let estimate = match tokio::time::timeout(left, counted).await {
                            Ok(Ok(series)) => Estimate::Series(series),
                            Ok(Err(why)) => Estimate::Failed(why),
                            Err(_) => Estimate::Failed(format!(
                                "no answer within precheck_timeout {}",
                                human(shared.precheck_timeout)
                            )),
                        };
                        shared.cache.put(key, estimate.clone());
                        estimate
                    }
                    None => Estimate::Failed("no pre-check request can be made for it".into()),
                }
            }
        };
        match estimate {
            Estimate::Series(series) if series > shared.max_series => findings.push(Finding {
                rule: GuardrailRule::MaxSeriesPerSelector,
                detail: format!(
                    "`{selector}` selects {series} series (more than max_series_per_selector {}) with no label matcher besides the metric name; add a label matcher such as {{job=\"…\"}}, or aggregate what you need",
                    shared.max_series
                ),
            }),
            Estimate::Series(_) => {}
            Estimate::Failed(why) => unchecked.push(Finding {
                rule: GuardrailRule::MaxSeriesPerSelector,
                detail: format!(
                    "could not count the series of `{selector}` ({why}); the query was sent unchecked: prefer a label matcher such as {{job=\"…\"}}"
                ),
            }),
        }
    }
    if checked.precheck.len() > MAX_PRECHECKS {
        // Counting stops at MAX_PRECHECKS: the rest would go unjudged.
        findings.push(Finding {
            rule: GuardrailRule::MaxSeriesPerSelector,
            detail: format!(
                "{} selectors have no label matcher besides the metric name, more than the {MAX_PRECHECKS} this server counts per query; add label matchers such as {{job=\"…\"}}",
                checked.precheck.len()
            ),
        });
    }
    let decisions = shared.decide(findings, unchecked)?;
    let mut response = inner.oneshot(req).await.map_err(Into::into)?;
    attach(&mut response, decisions);
    Ok(response)
}

impl Shared {
    /// The decisions on `findings` (refused in `enforce` mode) and on the
    /// selectors left `unchecked` (never refused), counted in the metric.
    fn decide(
        &self,
        findings: Vec<Finding>,
        unchecked: Vec<Finding>,
    ) -> Result<Vec<GuardrailDecision>, GuardrailRefusal> {
        let action = if self.enforce {
            GuardrailAction::Refuse
        } else {
            GuardrailAction::Warn
        };
        let decided = |findings: Vec<Finding>, action| {
            findings.into_iter().map(move |f| GuardrailDecision {
                rule: f.rule,
                action,
                detail: f.detail,
            })
        };
        let broken: Vec<_> = decided(findings, action).collect();
        let skipped: Vec<_> = decided(unchecked, GuardrailAction::PrecheckFailed).collect();
        self.metrics.record(&broken);
        self.metrics.record(&skipped);
        if self.enforce && !broken.is_empty() {
            let refusal = GuardrailRefusal(broken);
            tracing::info!(%refusal, "query refused by the guardrails");
            return Err(refusal);
        }
        for decision in broken.iter().chain(&skipped) {
            tracing::debug!(%decision, action = decision.action.as_str(), "guardrail warning");
        }
        Ok(broken.into_iter().chain(skipped).collect())
    }
}

fn attach<B>(response: &mut Response<B>, decisions: Vec<GuardrailDecision>) {
    if !decisions.is_empty() {
        response
            .extensions_mut()
            .insert(GuardrailDecisions(decisions));
    }
}

pin_project! {
    /// Response future of [`Guardrails`]: the inner future with the
    /// decisions to attach, a refusal, or the pre-checks and the request.
    #[project = GuardrailsProj]
    pub enum GuardrailsFuture<F, B> {
        Passed { #[pin] inner: F, decisions: Vec<GuardrailDecision> },
        Refused { error: Option<BoxError> },
        Checking { future: Boxed<B> },
    }
}

impl<F, B> GuardrailsFuture<F, B> {
    fn passed(inner: F, decisions: Vec<GuardrailDecision>) -> Self {
        Self::Passed { inner, decisions }
    }
}

impl<F, B, E> Future for GuardrailsFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardrailsProj::Passed { inner, decisions } => {
                let mut response = match inner.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(result) => result.map_err(Into::into)?,
                };
                attach(&mut response, std::mem::take(decisions));
                Poll::Ready(Ok(response))
            }
            GuardrailsProj::Refused { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "guardrails future polled after completion".into()))),
            GuardrailsProj::Checking { future } => future.as_mut().poll(cx),
        }
    }
}
