//! Why label tenancy refused a request or an answer, and why its config
//! cannot be used. Every message names what to do instead.

use super::filter::FilterError;
use super::rewrite::RewriteError;
use crate::BoxError;
use crate::tenant_id::TenantIdError;

/// A request not sent, or an answer not passed on, under label tenancy.
#[derive(Debug, thiserror::Error)]
pub enum TenantLabelError {
    #[error(
        "no tenant scope on this request while tenancy is enforced (refusing to query without one)"
    )]
    Missing,
    #[error("no tenant selected")]
    Empty,
    #[error("{count} tenants in one request is more than the allowed {max}; narrow org_id")]
    TooMany { count: usize, max: usize },
    #[error(transparent)]
    Invalid(#[from] TenantIdError),
    #[error(
        "this request names no Prometheus API endpoint, so it cannot be scoped to your tenants"
    )]
    NoEndpoint,
    #[error("{endpoint} cannot be scoped to your tenants by label, so it is not sent")]
    UnknownEndpoint { endpoint: String },
    #[error(
        "tool {tool} ({endpoint}) answers about the whole Prometheus, which the tenant label {label:?} cannot narrow to your tenants, so it is refused under label tenancy; an operator can allow it with layers.tenancy.label_unscoped_tools = [\"{tool}\"]"
    )]
    Unscoped {
        tool: &'static str,
        endpoint: &'static str,
        label: String,
    },
    #[error("{param}: {source}")]
    Rewrite {
        param: &'static str,
        source: RewriteError,
    },
    #[error("no query parameter to scope to your tenants")]
    NoQuery,
    #[error("{0}")]
    Form(String),
    #[error(
        "the answer of {endpoint} is larger than {limit} bytes, more than can be filtered to your tenants; narrow the request"
    )]
    AnswerTooLarge {
        endpoint: &'static str,
        limit: usize,
    },
    #[error("the answer of {endpoint} cannot be filtered to your tenants: {source}")]
    Unfilterable {
        endpoint: &'static str,
        source: FilterError,
    },
    #[error(
        "the answer of {endpoint} is encoded ({encoding}) and cannot be filtered to your tenants"
    )]
    Encoded {
        endpoint: &'static str,
        encoding: String,
    },
    #[error("the answer of {endpoint} broke off while it was read")]
    Broken {
        endpoint: &'static str,
        #[source]
        source: BoxError,
    },
}

impl TenantLabelError {
    /// Whether the caller's own request is at fault (a query that is not
    /// PromQL, or one that cannot be scoped as written): a bad request
    /// rather than a refusal.
    pub fn callers_request(&self) -> bool {
        matches!(self, Self::Rewrite { .. } | Self::NoQuery | Self::Form(_))
    }

    /// Whether the request never left (a refusal before sending), as
    /// opposed to an answer that could not be filtered.
    pub fn before_sending(&self) -> bool {
        !matches!(
            self,
            Self::AnswerTooLarge { .. }
                | Self::Unfilterable { .. }
                | Self::Encoded { .. }
                | Self::Broken { .. }
        )
    }
}

/// A `[layers.tenancy]` label setting that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantLabelConfigError {
    #[error(
        "layers.tenancy.enforce = \"label\" needs tenancy on (enabled = true and a mode other than \"none\"): without a caller's tenants there is nothing to scope by"
    )]
    NoTenancy,
    #[error(
        "layers.tenancy.label: {0:?} is not a Prometheus label name (letters, digits and _, not starting with a digit, and not __reserved__)"
    )]
    BadLabel(String),
    #[error("layers.tenancy.label_unscoped_tools: {tool:?} is not a tool; tools are {known}")]
    UnknownTool { tool: String, known: String },
    #[error(
        "layers.tenancy.label_unscoped_tools: {tool:?} is always scoped by the label; only these tools can be opted in: {unscoped}"
    )]
    AlwaysScoped { tool: String, unscoped: String },
    #[error(
        "layers.tenancy.{key} applies only with enforce = \"label\" (tenants are sent as X-Scope-OrgID in header mode); remove it or set enforce = \"label\""
    )]
    HeaderMode { key: &'static str },
}
