//! Native tests of the policy engine, one file per part; `support` builds policies and callers.
mod parse;
mod support;
