//! The request path, assembled in one place. Nowhere else is a stack built
//! or an order decided; each layer is switched on in `[layers.*]`.
//!
//! ```text
//!  MCP client ──HTTP──► INBOUND (one stack per route family, inbound.rs)
//!    /mcp           trace → metrics{route="/mcp"} → limits → authn → audience → tenancy → MCP tools
//!    /oauth/*       trace → metrics{route="/oauth"} → limits → authorization server
//!    /.well-known/* trace → metrics{route="/.well-known"} → metadata documents
//!                          │ a tool call builds typed Prometheus API requests
//!                          ▼
//!                   OUTBOUND (one stack per upstream, outbound.rs)
//!                   trace propagation → user agent → tenant (X-Scope-OrgID) → upstream auth
//!                   → truncate → upstream metrics → timeout → pooled client (upstream/client.rs)
//! ```

mod inbound;
mod outbound;

pub use inbound::Inbound;
pub use outbound::{Outbound, OutboundService, StackError};
