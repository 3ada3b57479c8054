//! Large tests (below).
