//! Native tests of the policy engine, one file per part; `support` builds policies and callers.
mod detect;
mod engine;
mod guard;
mod parse;
mod poison;
mod support;
