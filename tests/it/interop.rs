//! Interop with a third-party softphone: baresip registers as an agent (digest
//! auth) and answers a call that a citizen places through the gateway.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn baresip_registers_as_an_agent_and_answers_a_call() {
    let Some(baresip) = tool("baresip", "baresip") else {
        return;
    };
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = "[[queue]]\nname = \"q\"\nagents = [\"1001\"]\n\n\
[[agent]]\nid = \"1001\"\nname = \"baresip\"\npassword = \"lab-1001\"\n"
        .into();
    // baresip 1.0 gives up when any challenge names SHA-256 (see config/lab.toml).
    opts.extra_config = "[registrar]\nalgorithms = [\"MD5\"]\n".into();
    let gw = Gateway::start(opts);
    let dir = TempDir::new("baresip");
    let port = free_port();
    std::fs::write(
        dir.0.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\nsip_trans_def udp\n\
audio_player aubridge,nil\naudio_source aubridge,nil\naudio_alert aubridge,nil\n\
rtp_ports 30000-30100\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
module aubridge.so\nmodule_app account.so\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.0.join("accounts"),
        format!(
            "<sip:1001@{gw};transport=udp>;auth_pass=lab-1001;answermode=auto;regint=60;\
outbound=\"sip:{gw};transport=udp\"\n",
            gw = gw.sip
        ),
    )
    .unwrap();
    let mut phone = Command::new("timeout")
        .args(["30", baresip.to_str().unwrap(), "-f"])
        .arg(&dir.0)
        .args(["-t", "25"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baresip");
    let start = Instant::now();
    loop {
        let (_, body) = http_get(gw.http, "/api/v1/agents").unwrap();
        if body.contains("\"registered\":true") && body.contains("\"state\":\"ready\"") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "baresip never registered: {body}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = Softphone::start(&[
        "call".into(),
        "12345".into(),
        "--server".into(),
        gw.sip.to_string(),
        "--hangup-after-ms".into(),
        "500".into(),
        "--max-wait-s".into(),
        "10".into(),
    ])
    .finish(Duration::from_secs(20))
    .unwrap();
    assert_eq!(c["answered"], 1, "{c}");
    let (_, body) = http_get(gw.http, "/api/v1/agents").unwrap();
    assert!(body.contains("\"calls_answered\":1"), "{body}");
    let _ = phone.kill();
    let _ = phone.wait();
}
