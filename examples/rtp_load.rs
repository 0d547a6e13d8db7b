//! RTP relay load generator: the same G.711 traffic through hotline-gw's relay
//! or through rtpengine, measured the same way (`scripts/bench-rtp.sh` runs both).
//!
//! ```text
//! rtp_load hotline   --gateway 127.0.0.1:5060 --number 12300 --uas-port 5070 --calls N --seconds S --pid PID
//! rtp_load rtpengine --ng 127.0.0.1:2223 --calls N --seconds S --pid PID
//! rtp_load direct    --calls N --seconds S      (no relay: the baseline transit)
//! ```
//!
//! Setup: `hotline` places N calls through the gateway over SIP (this program is
//! both the caller and the callee the line routes to) and reads the relay ports
//! from the SDP; `rtpengine` creates N calls with ng `offer`/`answer`. Then each
//! call's two phones send 50 packets/s of 160-byte PCMA each way for S seconds
//! (one socket per phone, as real phones do). Every payload carries its send
//! time, so the receiver measures loss and the transit time through the relay.
//! CPU of the relay process is read from /proc/PID/stat over the same window.
//! Prints one JSON line.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotline_gateway::sip::builder::response_to;
use hotline_gateway::sip::message::{self, Headers, Message};
use hotline_gateway::sip::sdp::Sdp;

const PTIME: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Args {
    target: String,
    gateway: String,
    number: String,
    uas_port: u16,
    ng: String,
    calls: usize,
    seconds: u64,
    pid: u32,
    warmup_s: u64,
}

fn args() -> Args {
    let mut a = Args {
        gateway: "127.0.0.1:5060".into(),
        number: "12300".into(),
        uas_port: 5070,
        ng: "127.0.0.1:2223".into(),
        calls: 100,
        seconds: 10,
        warmup_s: 2,
        ..Default::default()
    };
    let mut it = std::env::args().skip(1);
    a.target = it.next().unwrap_or_default();
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--gateway" => a.gateway = v,
            "--number" => a.number = v,
            "--uas-port" => a.uas_port = v.parse().expect("--uas-port"),
            "--ng" => a.ng = v,
            "--calls" => a.calls = v.parse().expect("--calls"),
            "--seconds" => a.seconds = v.parse().expect("--seconds"),
            "--warmup-s" => a.warmup_s = v.parse().expect("--warmup-s"),
            "--pid" => a.pid = v.parse().expect("--pid"),
            _ => panic!("unknown option {k}"),
        }
    }
    assert!(
        ["hotline", "rtpengine", "direct"].contains(&a.target.as_str()),
        "usage: rtp_load hotline|rtpengine|direct [options] (see the file's doc)"
    );
    a
}

/// One call's two phones and where each sends.
struct Call {
    a: UdpSocket,
    b: UdpSocket,
    /// The relay's port for the caller (where `a` sends) and for the callee.
    to_a_side: SocketAddr,
    to_b_side: SocketAddr,
}

fn phone() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_nonblocking(true).unwrap();
    s
}

fn sdp(port: u16, session: usize) -> String {
    format!(
        "v=0\r\no=load {session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

fn endpoint(body: &[u8]) -> SocketAddr {
    let s = Sdp::parse(std::str::from_utf8(body).expect("SDP text")).expect("SDP");
    let (ip, port) = s.audio_endpoint().expect("audio endpoint");
    SocketAddr::new(ip, port)
}

/// Places the calls through the gateway; this program answers them too.
fn setup_hotline(a: &Args, phones: Vec<(UdpSocket, UdpSocket)>) -> Vec<Call> {
    let gw: SocketAddr = a.gateway.parse().expect("--gateway");
    let uac = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uas = UdpSocket::bind(("127.0.0.1", a.uas_port)).expect("bind the callee port");
    uac.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    uas.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let local = uac.local_addr().unwrap();
    let mut a_side: HashMap<String, SocketAddr> = HashMap::new();
    let mut b_side: HashMap<usize, SocketAddr> = HashMap::new();
    let mut pending: HashMap<String, usize> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let started = Instant::now();
    let mut next = 0usize;
    while (a_side.len() < phones.len() || b_side.len() < phones.len())
        && started.elapsed() < Duration::from_secs(60)
    {
        // At most 50 calls in setup at once.
        while next < phones.len() && pending.len() < 50 {
            let i = next;
            next += 1;
            let call_id = format!("load-{i}-{}", std::process::id());
            let body = sdp(phones[i].0.local_addr().unwrap().port(), i);
            let invite = format!(
                "INVITE sip:{n}@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{i}x;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:10{i:06}@{local}>;tag=t{i}\r\nTo: <sip:{n}@{gw}>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\nContact: <sip:1000@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len(),
                n = a.number
            );
            uac.send_to(invite.as_bytes(), gw).unwrap();
            pending.insert(call_id, i);
        }
        // The callee side: answer the gateway's INVITEs with phone b's SDP.
        if let Ok((n, from)) = uas.recv_from(&mut buf)
            && let Ok(Message::Request(req)) = message::parse(&buf[..n])
            && req.method == message::Method::Invite
        {
            {
                let offer = endpoint(&req.body);
                // The caller number (From user) carries the call's index.
                let from_user = req
                    .header("From")
                    .and_then(|f| message::SipUri::parse(message::addr_spec(f)).ok())
                    .and_then(|u| u.user.map(|u| u.to_string()))
                    .unwrap_or_default();
                let Some(i) = from_user
                    .strip_prefix("10")
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                b_side.insert(i, offer);
                let port = phones[i].1.local_addr().unwrap().port();
                let body = sdp(port, 10_000 + i);
                let mut m = response_to(&req, 200, "OK", Some(&format!("u{i}")));
                m.header("Contact", &format!("<sip:seat@127.0.0.1:{}>", a.uas_port));
                uas.send_to(&m.finish(Some("application/sdp"), body.as_bytes()), from)
                    .unwrap();
            }
        }
        if let Ok((n, _)) = uac.recv_from(&mut buf)
            && let Ok(Message::Response(resp)) = message::parse(&buf[..n])
            && resp.code == 200
        {
            let call_id = resp.call_id().unwrap_or_default().to_string();
            if let Some(i) = pending.remove(&call_id) {
                a_side.insert(call_id.clone(), endpoint(&resp.body));
                let to = resp.header("To").unwrap_or_default();
                let contact = resp
                    .header("Contact")
                    .map(message::addr_spec)
                    .unwrap_or_default()
                    .to_string();
                let ack = format!(
                    "ACK {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{i}ack\r\n\
Max-Forwards: 70\r\nFrom: <sip:10{i:06}@{local}>;tag=t{i}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                );
                uac.send_to(ack.as_bytes(), gw).unwrap();
                let _ = i;
            }
        }
    }
    assert_eq!(a_side.len(), phones.len(), "not every call was answered");
    // Pair caller-side relay ports with calls by Call-ID index.
    let mut calls: Vec<Option<Call>> = (0..phones.len()).map(|_| None).collect();
    let mut by_index: Vec<(usize, SocketAddr)> = a_side
        .iter()
        .map(|(cid, ep)| (cid.split('-').nth(1).unwrap().parse().unwrap(), *ep))
        .collect();
    by_index.sort();
    for ((i, to_a), (pa, pb)) in by_index.into_iter().zip(phones) {
        calls[i] = Some(Call {
            a: pa,
            b: pb,
            to_a_side: to_a,
            to_b_side: b_side[&i],
        });
    }
    calls.into_iter().map(Option::unwrap).collect()
}

/// A minimal bencode value (enough for rtpengine's ng protocol).
enum Ben {
    Str(Vec<u8>),
    Dict(Vec<(Vec<u8>, Ben)>),
}

fn ben_encode(v: &Ben, out: &mut Vec<u8>) {
    match v {
        Ben::Str(s) => {
            out.extend(format!("{}:", s.len()).as_bytes());
            out.extend(s);
        }
        Ben::Dict(d) => {
            out.push(b'd');
            for (k, v) in d {
                ben_encode(&Ben::Str(k.clone()), out);
                ben_encode(v, out);
            }
            out.push(b'e');
        }
    }
}

/// The value of a top-level string key in a bencoded dictionary.
fn ben_get(data: &[u8], key: &str) -> Option<String> {
    let needle = format!("{}:{}", key.len(), key);
    let at = data
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?
        + needle.len();
    let rest = &data[at..];
    let colon = rest.iter().position(|&c| c == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    Some(String::from_utf8_lossy(&rest[colon + 1..colon + 1 + len]).into_owned())
}

fn ng(sock: &UdpSocket, cookie: &str, fields: Vec<(&str, String)>) -> Vec<u8> {
    let dict = Ben::Dict(
        fields
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Ben::Str(v.into_bytes())))
            .collect(),
    );
    let mut msg = format!("{cookie} ").into_bytes();
    ben_encode(&dict, &mut msg);
    sock.send(&msg).unwrap();
    let mut buf = vec![0u8; 65_536];
    let n = sock.recv(&mut buf).expect("ng answer");
    buf[..n].to_vec()
}

fn setup_rtpengine(a: &Args, phones: Vec<(UdpSocket, UdpSocket)>) -> Vec<Call> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(&a.ng).expect("--ng");
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut calls = Vec::new();
    for (i, (pa, pb)) in phones.into_iter().enumerate() {
        let cid = format!("load-{i}-{}", std::process::id());
        let r = ng(
            &sock,
            &format!("o{i}"),
            vec![
                ("command", "offer".into()),
                ("call-id", cid.clone()),
                ("from-tag", format!("f{i}")),
                ("sdp", sdp(pa.local_addr().unwrap().port(), i)),
            ],
        );
        let to_b = endpoint(ben_get(&r, "sdp").expect("offer SDP").as_bytes());
        let r = ng(
            &sock,
            &format!("a{i}"),
            vec![
                ("command", "answer".into()),
                ("call-id", cid),
                ("from-tag", format!("f{i}")),
                ("to-tag", format!("t{i}")),
                ("sdp", sdp(pb.local_addr().unwrap().port(), 10_000 + i)),
            ],
        );
        let to_a = endpoint(ben_get(&r, "sdp").expect("answer SDP").as_bytes());
        calls.push(Call {
            a: pa,
            b: pb,
            to_a_side: to_a,
            to_b_side: to_b,
        });
    }
    calls
}

/// utime + stime of a process, in seconds.
fn cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of /proc/PID/stat (1-based), after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let a = args();
    let phones: Vec<(UdpSocket, UdpSocket)> = (0..a.calls).map(|_| (phone(), phone())).collect();
    let t0 = Instant::now();
    let calls = match a.target.as_str() {
        "hotline" => setup_hotline(&a, phones),
        "rtpengine" => setup_rtpengine(&a, phones),
        _ => phones
            .into_iter()
            .map(|(pa, pb)| {
                let (to_b, to_a) = (pb.local_addr().unwrap(), pa.local_addr().unwrap());
                Call {
                    a: pa,
                    b: pb,
                    to_a_side: to_b,
                    to_b_side: to_a,
                }
            })
            .collect(),
    };
    let setup_ms = t0.elapsed().as_millis();
    let calls = Arc::new(calls);
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    // Sender: every 20 ms, one packet from each phone of each call.
    let sender = {
        let (calls, stop, measuring) = (calls.clone(), stop.clone(), measuring.clone());
        std::thread::spawn(move || {
            let mut pkt = [0u8; 172];
            pkt[0] = 0x80;
            pkt[1] = 8;
            let mut seq: u16 = 0;
            let mut next = Instant::now();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let counting = measuring.load(Ordering::Relaxed);
                for (i, c) in calls.iter().enumerate() {
                    for (dir, (sock, to)) in [(&c.a, c.to_a_side), (&c.b, c.to_b_side)]
                        .into_iter()
                        .enumerate()
                    {
                        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                        pkt[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                        pkt[8..12].copy_from_slice(&((i * 2 + dir) as u32).to_be_bytes());
                        let ns = epoch.elapsed().as_nanos() as u64;
                        pkt[12..20].copy_from_slice(&ns.to_be_bytes());
                        pkt[20] = u8::from(counting);
                        if sock.send_to(&pkt, to).is_ok() && counting {
                            sent += 1;
                        }
                    }
                }
                seq = seq.wrapping_add(1);
                next += PTIME;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            sent
        })
    };
    // Receiver: poll every phone; count marked packets and their transit times.
    let receiver = {
        let (calls, stop) = (calls.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut poll = mio::Poll::new().unwrap();
            let mut socks: Vec<mio::net::UdpSocket> = Vec::new();
            for c in calls.iter() {
                for s in [&c.a, &c.b] {
                    socks.push(mio::net::UdpSocket::from_std(s.try_clone().unwrap()));
                }
            }
            for (i, s) in socks.iter_mut().enumerate() {
                poll.registry()
                    .register(s, mio::Token(i), mio::Interest::READABLE)
                    .unwrap();
            }
            let mut events = mio::Events::with_capacity(1024);
            let mut buf = [0u8; 2048];
            let (mut got, mut late) = (0u64, Vec::with_capacity(1 << 20));
            while !stop.load(Ordering::Relaxed) {
                let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
                for ev in events.iter() {
                    let s = &socks[ev.token().0];
                    while let Ok((n, _)) = s.recv_from(&mut buf) {
                        if n >= 21 && buf[20] == 1 {
                            got += 1;
                            let sent = u64::from_be_bytes(buf[12..20].try_into().unwrap());
                            let now = epoch.elapsed().as_nanos() as u64;
                            late.push(now.saturating_sub(sent) / 1000);
                        }
                    }
                }
            }
            (got, late)
        })
    };
    std::thread::sleep(Duration::from_secs(a.warmup_s));
    let cpu0 = cpu_s(a.pid);
    let w0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(a.seconds));
    measuring.store(false, Ordering::Relaxed);
    let window = w0.elapsed().as_secs_f64();
    let cpu = cpu_s(a.pid) - cpu0;
    // Let the last marked packets arrive.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let (got, mut transit) = receiver.join().unwrap();
    transit.sort_unstable();
    let q = |p: f64| {
        transit
            .get(((transit.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    let pps = got as f64 / window;
    println!(
        "{{\"relay\":\"{}\",\"calls\":{},\"seconds\":{:.1},\"setup_ms\":{setup_ms},\"sent\":{sent},\"received\":{got},\
\"loss\":{:.6},\"pps\":{:.0},\"relay_cpu_s\":{cpu:.2},\"cpu_us_per_packet\":{:.2},\"pps_per_core\":{:.0},\
\"transit_us_p50\":{},\"transit_us_p99\":{},\"transit_us_max\":{}}}",
        a.target,
        a.calls,
        window,
        1.0 - got as f64 / sent.max(1) as f64,
        pps,
        cpu * 1e6 / got.max(1) as f64,
        if cpu > 0.0 { got as f64 / cpu } else { 0.0 },
        q(0.5),
        q(0.99),
        transit.last().copied().unwrap_or(0),
    );
}
