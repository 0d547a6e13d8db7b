//! Arbitrary bytes through the framers, the parser, request validation, the salvage
//! scanner and every header accessor. Asserts only that nothing panics (plus two
//! framing facts that hold by construction).
#![no_main]

use hotline_gateway::sip::framing::{self, Frame};
use hotline_gateway::sip::message::{self, Headers, Message};
use hotline_gateway::sip::{salvage, validate};
use libfuzzer_sys::fuzz_target;

fn headers<H: Headers>(m: &H) {
    let _ = m.call_id();
    let _ = m.cseq();
    let _ = m.from_tag();
    let _ = m.to_tag();
    let _ = m.top_via();
    let _ = m.via_values();
    let _ = m.content_type();
    let _ = m.header_count("Via");
    let _ = m.header_all("Record-Route").count();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = framing::frame_datagram(data, 65_535) {
        assert!(n <= data.len(), "frame_datagram: {n} > {}", data.len());
        match message::parse(&data[..n]) {
            Ok(Message::Request(req)) => {
                headers(&req);
                let _ = req.contact_uri();
                let _ = req.parsed_uri().map(|u| u.ip());
                let _ = req.max_forwards();
                let _ = hotline_gateway::call::called_number(&req);
                let _ = hotline_gateway::call::caller_number(&req);
                let _ = validate::check_request(&req);
            }
            Ok(Message::Response(resp)) => {
                headers(&resp);
                let _ = resp.contact_uri();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let _ = salvage::bad_request(data, "x");
    match framing::frame_stream(data, 4096) {
        Frame::Complete(n) => assert!(n <= data.len(), "frame_stream: {n} > {}", data.len()),
        Frame::Invalid { len, .. } => assert!(
            len <= data.len(),
            "frame_stream: skip {len} > {}",
            data.len()
        ),
        Frame::Incomplete => {}
    }
    let _ = framing::skip_keepalive(data);
});
