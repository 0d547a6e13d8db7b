//! The transaction layer and the B2BUA core, driven by a sequence of operations
//! (datagrams and TCP segments from loopback peers, clock steps) on a virtual clock.
//! Asserts that nothing panics and that once every timer has run out no
//! transaction and no call is left. Encoding: see `hotline_gateway_fuzz::op`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hotline_gateway_fuzz::run_core_input(data);
});
