use super::*;
use crate::sip::message::{Message, parse};

fn request(data: &[u8]) -> Request {
    match parse(data).expect("parses") {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

/// An INVITE to `ruri` with `extra` header lines (each ending in CRLF).
fn invite(ruri: &str, extra: &str) -> Request {
    let text = format!(
        "INVITE {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-t1\r\n\
         Max-Forwards: 70\r\n\
         Call-ID: t1@198.51.100.7\r\n\
         CSeq: 1 INVITE\r\n\
         From: <sip:+8613800138000@carrier.example>;tag=a1\r\n\
         To: <sip:12345@hotline.example>\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    );
    request(text.as_bytes())
}

fn nat(area: Option<&str>, number: &str) -> National {
    National {
        area: area.map(str::to_string),
        number: number.to_string(),
    }
}

#[test]
fn digits_from_uris_and_bare_numbers() {
    let table = [
        ("sip:12345@hotline.example", "12345"),
        ("sips:12345@hotline.example;transport=tls", "12345"),
        ("SIP:12345@hotline.example", "12345"),
        (
            "<sip:+8613800138000@carrier.example>;tag=a3",
            "+8613800138000",
        ),
        (
            "\"张三\" <sip:13800000000@example.com>;tag=abc",
            "13800000000",
        ),
        ("\"a <b>\" <sip:110@example.com>", "110"),
        ("sip:0351-1234-5678@h.example", "035112345678"),
        ("sip:12345:secret@h.example", "12345"),
        ("sip:%2B8613800138000@h.example", "+8613800138000"),
        (
            "sip:12345@hotline.example?Reason=SIP%3Bcause%3D302",
            "12345",
        ),
        (
            "sip:12345;phone-context=+86-351@gw.example;user=phone",
            "035112345",
        ),
        ("tel:+86-351-12345", "+8635112345"),
        ("tel:+86-351-12345;phone-context=+86", "+8635112345"), // global: context ignored
        ("tel:12345;phone-context=+86-351", "035112345"),
        ("tel:12345;phone-context=+86351", "035112345"),
        ("tel:12345;phone-context=+86-10", "01012345"),
        ("tel:12345;phone-context=+86-010", "01012345"),
        ("tel:12345;phone-context=+86", "12345"),
        ("<tel:12345;phone-context=+86-10>", "01012345"),
        ("tel:13800138000;phone-context=+86-351", "13800138000"), // mobiles have no area
        ("tel:035112345;phone-context=+86-351", "035112345"),     // already has one
        ("tel:62345678;phone-context=hotline.example", "62345678"),
        ("tel:5551234;phone-context=+1-212", "+12125551234"),
        ("TEL:12345", "12345"),
        ("tel:12345;ext=9", "12345"),
        ("0351-12345", "035112345"),
        ("(010) 6512-3456", "01065123456"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("(+86) 351.1234.5678", "+8635112345678"),
        (" 12345 ", "12345"),
    ];
    for (raw, want) in table {
        assert_eq!(digits_of(raw).as_deref(), Some(want), "{raw:?}");
    }
    for none in [
        "sip:anonymous@anonymous.invalid",
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1",
        "sip:unknown@carrier.example",
        "<sip:restricted@carrier.example>",
        "anonymous",
        "Restricted",
        "",
        "  ",
        "+",
        "sip:hotline.example",
        "sip:a@carrier.example",
        "tel:",
        "tel:+86-abc",
        "12345#",
        "*86",
        "1+2",
        "mailto:a@b.example",
        "urn:service:sos",
    ] {
        assert_eq!(digits_of(none), None, "{none:?}");
    }
}

#[test]
fn national_prefixes_and_area_codes() {
    let table = [
        // service numbers: no area unless dialled with one
        ("12345", None, "12345"),
        ("110", None, "110"),
        ("+8612345", None, "12345"),
        ("008612345", None, "12345"),
        ("8612345", None, "8612345"), // bare 86 + a short number: not a prefix
        ("035112345", Some("0351"), "12345"),
        ("0351110", Some("0351"), "110"),
        ("+8635112345", Some("0351"), "12345"),
        ("+86035112345", Some("0351"), "12345"), // trunk 0 kept after +86
        ("86035112345", Some("0351"), "12345"),
        ("+861012345", Some("010"), "12345"),
        ("+8610086", None, "10086"), // carrier service, not Beijing
        // mobiles
        ("13800138000", None, "13800138000"),
        ("+8613800138000", None, "13800138000"),
        ("008613800138000", None, "13800138000"),
        ("8613800138000", None, "13800138000"),
        ("013800138000", None, "13800138000"), // old 0-prefixed out-of-town dialling
        ("19912345678", None, "19912345678"),
        // landlines: 010 and 02X are three digits, other codes four
        ("01065123456", Some("010"), "65123456"),
        ("+861065123456", Some("010"), "65123456"),
        ("+8601065123456", Some("010"), "65123456"),
        ("00861065123456", Some("010"), "65123456"),
        ("8601065123456", Some("010"), "65123456"),
        ("02112345678", Some("021"), "12345678"),
        ("+862112345678", Some("021"), "12345678"),
        ("862112345678", None, "862112345678"), // bare 86 without trunk 0: kept
        ("03517654321", Some("0351"), "7654321"),
        ("+8635187654321", Some("0351"), "87654321"),
        ("075512345678", Some("0755"), "12345678"),
        ("+8675512345678", Some("0755"), "12345678"),
        ("0086075512345678", Some("0755"), "12345678"),
        ("62345678", None, "62345678"),
        ("86123456", None, "86123456"), // an 8-digit local number starting 86
        // non-geographic and foreign
        ("4008123456", None, "4008123456"),
        ("+864008123456", None, "4008123456"),
        ("+12125551234", None, "+12125551234"),
        ("0012125551234", None, "+12125551234"),
        // not splittable: returned whole
        ("0123456", None, "0123456"),
        ("010", None, "010"),
        ("0351", None, "0351"),
        ("+86", None, ""),
        ("12a45", None, "12a45"),
        // The Diversion sample in tests/corpus/hotline/diversion.dat: +86 then 10
        // (Beijing) then 012315, a local part no real number has. Kept as read.
        ("+8610012315", Some("010"), "012315"),
    ];
    for (digits, area, number) in table {
        assert_eq!(national(digits), nat(area, number), "{digits}");
    }
    // Separators, via digits_of, then national.
    for raw in [
        "0351-12345",
        "035112345",
        "+86-351-12345",
        "tel:12345;phone-context=+86-351",
    ] {
        let n = national(&digits_of(raw).unwrap());
        assert_eq!(n, nat(Some("0351"), "12345"), "{raw}");
        assert_eq!(n.to_string(), "0351-12345");
        assert_eq!(n.national_format(), "035112345");
    }
    assert_eq!(nat(None, "12345").to_string(), "12345");
    assert_eq!(nat(None, "12345").national_format(), "12345");
}

#[test]
fn caller_kinds() {
    use CallerKind::*;
    let table = [
        (None, Anonymous),
        (Some("sip:anonymous@anonymous.invalid"), Anonymous),
        (
            Some("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1"),
            Anonymous,
        ),
        (Some("<sip:restricted@carrier.example>"), Anonymous),
        (Some("unknown"), Anonymous),
        (Some(""), Anonymous),
        (Some("<sip:+8613800138000@carrier.example>;tag=a3"), Mobile),
        (Some("13800138000"), Mobile),
        (Some("tel:+86-138-0013-8000"), Mobile),
        (Some("8613800138000"), Mobile),
        (Some("0351-7654321"), Landline),
        (Some("+86 10 6512 3456"), Landline),
        (Some("sip:02112345678@carrier.example"), Landline),
        (Some("62345678"), Landline),
        (Some("110"), Service),
        (Some("12345"), Service),
        (Some("95588"), Service),
        (Some("4008123456"), Service),
        (Some("0351-12345"), Service),
        (Some("+12125551234"), International),
        (Some("00441234567890"), International),
        (Some("tel:+81-3-1234-5678"), International),
    ];
    for (raw, kind) in table {
        assert_eq!(caller_kind(raw), kind, "{raw:?}");
    }
}

#[test]
fn corpus_diversion_sample() {
    let req = request(include_bytes!("../../tests/corpus/hotline/diversion.dat"));
    assert_eq!(
        original_called(&req),
        Some(("+8610012315".to_string(), OriginalSource::Diversion))
    );
    // Its History-Info agrees on the original target: index=1 is 12315, index=1.1
    // (carrying an escaped Reason header) is where the call was retargeted.
    assert_eq!(history_info_original(&req).as_deref(), Some("12315"));
    assert_eq!(to_digits(&req).as_deref(), Some("12315"));
    assert_eq!(request_uri_digits(&req).as_deref(), Some("12345"));
    assert_eq!(from_digits(&req).as_deref(), Some("+8613800138000"));
    assert_eq!(asserted_caller(&req), None);
}

#[test]
fn corpus_tel_sample() {
    let req = request(include_bytes!("../../tests/corpus/hotline/tel_ruri.dat"));
    assert_eq!(original_called(&req), None);
    let ruri = request_uri_digits(&req).unwrap();
    assert_eq!(ruri, "01012345");
    assert_eq!(national(&ruri), nat(Some("010"), "12345"));
    assert_eq!(to_digits(&req).as_deref(), Some("01012345"));
    assert_eq!(asserted_caller(&req).as_deref(), Some("+8613800138000"));
    assert_eq!(caller_kind(req.header("From")), CallerKind::Mobile);
}

#[test]
fn original_called_from_diversion_and_history_info() {
    use OriginalSource::*;
    let table: &[(&str, Option<(&str, OriginalSource)>)] = &[
        ("", None),
        (
            "Diversion: <sip:12315@carrier.example>;reason=unconditional\r\n",
            Some(("12315", Diversion)),
        ),
        // Several lines: the most recent diversion is on top, the original at the
        // bottom.
        (
            "Diversion: <sip:95555@carrier.example>;reason=no-answer;counter=1\r\n\
             Diversion: <tel:12315>;reason=unconditional;counter=1\r\n",
            Some(("12315", Diversion)),
        ),
        (
            "Diversion: <sip:95555@carrier.example>;reason=user-busy, \
             \"12369, old\" <sip:12369@carrier.example>;reason=unconditional\r\n",
            Some(("12369", Diversion)),
        ),
        (
            "Diversion: <tel:12315;phone-context=+86-351>;reason=unconditional\r\n",
            Some(("035112315", Diversion)),
        ),
        // An unusable bottom entry: the nearest one with a number.
        (
            "Diversion: <sip:12315@carrier.example>, <sip:anonymous@anonymous.invalid>\r\n",
            Some(("12315", Diversion)),
        ),
        // Diversion wins over History-Info.
        (
            "History-Info: <sip:12328@carrier.example>;index=1\r\n\
             Diversion: <sip:12315@carrier.example>\r\n",
            Some(("12315", Diversion)),
        ),
        // History-Info: the lowest index, wherever it is listed.
        (
            "History-Info: <sip:12345@hotline.example?Reason=SIP%3Bcause%3D302%3Btext%3D%22Moved%22>;index=1.1, \
             <sip:12315@carrier.example>;index=1\r\n",
            Some(("12315", HistoryInfo)),
        ),
        (
            "History-Info: <sip:12345@hotline.example>;index=1.1.1\r\n\
             History-Info: <tel:+86-351-12333>;index=1;rc=1\r\n\
             History-Info: <sip:96333@carrier.example>;index=1.1;mp=1\r\n",
            Some(("+8635112333", HistoryInfo)),
        ),
        (
            "History-Info: <sip:111@c.example>;index=1.10, <sip:222@c.example>;index=1.9\r\n",
            Some(("222", HistoryInfo)),
        ),
        // No index: the first one listed.
        (
            "History-Info: <sip:12328@carrier.example>, <sip:12345@hotline.example>\r\n",
            Some(("12328", HistoryInfo)),
        ),
        // An entry without a number (privacy, a domain) is skipped.
        (
            "History-Info: <sip:anonymous@anonymous.invalid>;index=1, \
             <sip:12333@carrier.example>;index=1.1\r\n",
            Some(("12333", HistoryInfo)),
        ),
        ("History-Info: <sip:hotline.example>;index=1\r\n", None),
    ];
    for (extra, want) in table {
        let req = invite("sip:12345@hotline.example", extra);
        let got = original_called(&req);
        let want = want.map(|(d, s)| (d.to_string(), s));
        assert_eq!(got, want, "{extra:?}");
    }
}

#[test]
fn asserted_identity() {
    let table = [
        ("", None),
        (
            "P-Asserted-Identity: <sip:+8613800138000@carrier.example>\r\n",
            Some("+8613800138000"),
        ),
        (
            "P-Asserted-Identity: \"Zhang\" <sip:+8613800138000@carrier.example>, <tel:+8613900139000>\r\n",
            Some("+8613900139000"),
        ),
        (
            "P-Asserted-Identity: <sip:+8613800138000@carrier.example;user=phone>\r\n\
             P-Asserted-Identity: <tel:+86-351-7654321>\r\n",
            Some("+863517654321"),
        ),
        (
            "p-asserted-identity: <sip:anonymous@anonymous.invalid>, <sip:0351-7654321@c.example>\r\n",
            Some("03517654321"),
        ),
    ];
    for (extra, want) in table {
        let req = invite("sip:12345@hotline.example", extra);
        assert_eq!(asserted_caller(&req).as_deref(), want, "{extra:?}");
    }
}

#[test]
fn called_number_helpers() {
    let req = invite("tel:12345;phone-context=+86-351", "");
    assert_eq!(request_uri_digits(&req).as_deref(), Some("035112345"));
    assert_eq!(to_digits(&req).as_deref(), Some("12345"));
    let req = invite("sip:gw@hotline.example", "");
    assert_eq!(request_uri_digits(&req), None);
    assert_eq!(OriginalSource::HistoryInfo.to_string(), "History-Info");
    assert_eq!(OriginalSource::RequestUri.as_str(), "Request-URI");
}

#[test]
fn odd_input_never_panics() {
    let samples = [
        "\"张三\" <sip:%2B86-351-12345;phone-context=+86-351@h.example?X=%3B>;tag=1",
        "tel:12345;phone-context=+86-10;ext=%2",
        "<tel:+86(351)1234-5678>, <sip:anonymous@anonymous.invalid>",
        "%E5%BC%A0%",
        "sip:@;<>",
    ];
    for s in samples {
        for (i, _) in s.char_indices().chain([(s.len(), ' ')]) {
            for part in [&s[..i], &s[i..]] {
                let d = digits_of(part);
                let _ = national(d.as_deref().unwrap_or(part));
                let _ = caller_kind(Some(part));
            }
        }
    }
}
