//! Arbitrary text through the SDP parser and every rewrite the B2BUA applies to an
//! offer. Asserts that nothing panics and that what parses prints to text that
//! parses again to the same thing.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use hotline_gateway::sip::sdp::{Direction, Sdp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut sdp) = Sdp::parse(text) else {
        return;
    };
    let printed = sdp.to_string();
    let again = Sdp::parse(&printed).expect("printed SDP parses");
    assert_eq!(again.to_string(), printed, "printing is stable");
    let _ = sdp.audio_endpoint();
    let _ = sdp.audio_target();
    let _ = sdp.is_hold();
    let _ = sdp.direction();
    sdp.anchor(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 40_000, true);
    let _ = sdp.restrict_codecs(&["PCMA/8000", "PCMU/8000", "telephone-event/8000"]);
    sdp.set_direction(Direction::SendOnly);
    let printed = sdp.to_string();
    Sdp::parse(&printed).expect("a rewritten SDP parses");
});
