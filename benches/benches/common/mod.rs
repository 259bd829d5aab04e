//! Criterion settings shared by every bench: short runs, since the figures come from a shared
//! 2-core machine where other builds run at the same time. Compare rows of one run, not runs.

use std::time::Duration;

use criterion::Criterion;

/// 0.5 s warm-up, 2 s of measurement, 30 samples per benchmark.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}
