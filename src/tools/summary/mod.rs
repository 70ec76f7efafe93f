//! Answers a model reads in a few lines: statistics per series instead of
//! samples, rankings and label spreads instead of long lists, and fewer
//! samples of the same shape when samples are asked for.

pub mod downsample;
pub mod matrix;
pub mod number;
pub mod samples;
pub mod stats;
pub mod stream;
mod stream_series;
#[cfg(test)]
mod stream_tests;
pub mod vector;
