//! The configured upstreams by name: a tool can reach only these.

use std::sync::Arc;

use mcp_prometheus_layers::build::BuildCtx;

use super::Upstream;
use crate::config::UpstreamConfig;
use crate::stack::{Outbound, StackError};

/// The configured upstreams, in config order; the first is the default.
#[derive(Clone)]
pub struct Upstreams {
    list: Arc<[Arc<Upstream>]>,
}

/// A tool named an upstream the operator did not configure.
#[derive(Debug, thiserror::Error)]
#[error("unknown upstream {name:?}: configured upstreams are {known}")]
pub struct UnknownUpstream {
    pub name: String,
    pub known: String,
}

impl Upstreams {
    /// Every configured upstream with its outbound stacks.
    pub fn new(
        configs: &[UpstreamConfig],
        outbound: &Outbound,
        ctx: &BuildCtx,
    ) -> Result<Self, StackError> {
        let list = configs
            .iter()
            .enumerate()
            .map(|(i, c)| Ok(Arc::new(Upstream::new(c, outbound.stack(ctx, i, c)?))))
            .collect::<Result<Vec<_>, StackError>>()?;
        Ok(Self { list: list.into() })
    }

    /// The upstream a tool asked for, or the default.
    pub fn get(&self, name: Option<&str>) -> Result<&Arc<Upstream>, UnknownUpstream> {
        match name {
            None => self.list.first(),
            Some(name) => self.list.iter().find(|u| u.name() == name),
        }
        .ok_or_else(|| UnknownUpstream {
            name: name.unwrap_or_default().to_owned(),
            known: self
                .list
                .iter()
                .map(|u| format!("{:?}", u.name()))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The default upstream (validation guarantees there is one).
    pub fn default_upstream(&self) -> Option<&Arc<Upstream>> {
        self.list.first()
    }
}
