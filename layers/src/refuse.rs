//! The future of a layer that either refuses a request at once or passes
//! it on: one type for every such layer, so none boxes its inner future
//! per call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::BoxError;

pin_project! {
    /// A refusal ready now, or the inner service's future with its error
    /// boxed.
    #[project = RefuseOrProj]
    pub enum RefuseOr<F, T> {
        /// Refused: the answer is ready (taken on first poll).
        Refused { answer: Option<Result<T, BoxError>> },
        /// Passed on.
        Inner { #[pin] future: F },
    }
}

impl<F, T> RefuseOr<F, T> {
    /// A request refused with `error`.
    pub fn error(error: impl Into<BoxError>) -> Self {
        Self::Refused {
            answer: Some(Err(error.into())),
        }
    }

    /// A request answered by the layer itself (an HTTP refusal).
    pub fn answer(response: T) -> Self {
        Self::Refused {
            answer: Some(Ok(response)),
        }
    }

    /// A request passed on to the inner service.
    pub fn inner(future: F) -> Self {
        Self::Inner { future }
    }
}

impl<F, T, E> Future for RefuseOr<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RefuseOrProj::Refused { answer } => Poll::Ready(
                answer
                    .take()
                    .unwrap_or_else(|| Err("RefuseOr polled after completion".into())),
            ),
            RefuseOrProj::Inner { future } => future.poll(cx).map(|r| r.map_err(Into::into)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_are_ready_and_inner_errors_are_boxed() {
        let refused: RefuseOr<std::future::Ready<Result<u8, std::io::Error>>, u8> =
            RefuseOr::error("no");
        assert_eq!(refused.await.expect_err("refused").to_string(), "no");
        let answered: RefuseOr<std::future::Ready<Result<u8, std::io::Error>>, u8> =
            RefuseOr::answer(7);
        assert_eq!(answered.await.expect("answer"), 7);
        let failed = RefuseOr::<_, u8>::inner(std::future::ready(Err::<u8, _>(
            std::io::Error::other("inner"),
        )));
        assert_eq!(failed.await.expect_err("boxed").to_string(), "inner");
    }
}
