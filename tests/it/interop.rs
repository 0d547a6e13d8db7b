//! Interop with third-party softphones: baresip registers as an agent (digest
//! auth), answers a citizen's call and adds 110 to it (a three-party call);
//! Linphone's console client consults 110 and transfers the citizen to it
//! (attended transfer, REFER with Replaces).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Waits (15 s) until agent 1001's softphone `who` has registered.
fn registered(gw: &Gateway, who: &str) {
    gw.wait_until(
        &format!("{who} registered"),
        Duration::from_secs(15),
        || {
            let (_, body) = http_get(gw.http, "/api/v1/agents").unwrap();
            body.contains("\"registered\":true") && body.contains("\"state\":\"ready\"")
        },
    );
}

/// Queue q of agent 1001 (`who`, password `lab-1001`), and the transfer
/// directory's 110 at `police`.
fn with_110(who: &str, police: u16) -> String {
    format!(
        "[[queue]]\nname = \"q\"\nagents = [\"1001\"]\n\n\
[[agent]]\nid = \"1001\"\nname = \"{who}\"\npassword = \"lab-1001\"\n\n\
[[transfer]]\nnumber = \"110\"\nname = \"Police\"\ntarget = \"sip:110@127.0.0.1:{police}\"\n"
    )
}

/// baresip's configuration folder: agent 1001 (password `lab-1001`) at the
/// gateway, answering at once, no audio devices, RTP from `rtp_from`, and
/// `extra` configuration lines.
fn baresip_dir(gw: &Gateway, tag: &str, rtp_from: u16, extra: &str) -> TempDir {
    let dir = TempDir::new(tag);
    let port = free_port();
    std::fs::write(
        dir.0.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\nsip_trans_def udp\n\
audio_player aubridge,nil\naudio_source aubridge,nil\naudio_alert aubridge,nil\n\
rtp_ports {rtp_from}-{}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
module aubridge.so\nmodule_app account.so\n{extra}",
            rtp_from + 100
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
    dir
}

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
    let dir = baresip_dir(&gw, "baresip", 30000, "");
    let mut phone = Command::new("timeout")
        .args(["30", baresip.to_str().unwrap(), "-f"])
        .arg(&dir.0)
        .args(["-t", "25"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baresip");
    registered(&gw, "baresip");
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

/// A stock softphone starts a three-party call: baresip, answering as agent
/// 1001, is told (through its UDP console) to transfer the call to
/// `sip:110@gateway;hotline=conference`, the URI its blind-transfer command
/// takes. 110 (a softphone at the directory's address) joins and hears the
/// citizen. baresip 1.0 has no attended transfer (no Replaces): that flow is
/// tested with Linphone below and with the project's softphone.
#[test]
fn baresip_adds_110_to_a_call_with_its_transfer_command() {
    let Some(baresip) = tool("baresip", "baresip") else {
        return;
    };
    let police = free_port();
    let mut opts = GwOpts::to("queue:q");
    opts.extra_dialplan = with_110("baresip", police);
    opts.extra_config = "[registrar]\nalgorithms = [\"MD5\"]\n[media]\nsurvey = false\n".into();
    let gw = Gateway::start(opts);
    let cons = free_port();
    let console = format!("module cons.so\ncons_listen 127.0.0.1:{cons}\nmodule_app menu.so\n");
    let dir = baresip_dir(&gw, "baresip-conf", 30200, &console);
    let mut phone = Command::new("timeout")
        .args(["40", baresip.to_str().unwrap(), "-f"])
        .arg(&dir.0)
        .args(["-t", "35"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baresip");
    registered(&gw, "baresip");
    let p = Softphone::answering("110", police, 30, &[]);
    let c = Softphone::start(&[
        "call".into(),
        "12345".into(),
        "--server".into(),
        gw.sip.to_string(),
        "--hangup-after-ms".into(),
        "5000".into(),
        "--max-wait-s".into(),
        "10".into(),
    ]);
    gw.wait_until("baresip on the call", Duration::from_secs(10), || {
        gw.get_json("/api/v1/agents")["agents"][0]["state"] == "on_call"
    });
    std::thread::sleep(Duration::from_millis(500));
    let console = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let command = format!("/transfer sip:110@{};hotline=conference\n", gw.sip);
    console
        .send_to(command.as_bytes(), ("127.0.0.1", cons))
        .unwrap();
    let ps = p.finish(Duration::from_secs(30)).expect("110");
    let cs = c.finish(Duration::from_secs(30)).expect("caller");
    assert_eq!(cs["answered"], 1, "{cs}");
    assert_eq!(
        ps["answered"],
        1,
        "110 joined from baresip's REFER: {ps}\n{}",
        gw.log()
    );
    gw.wait_until("the record", Duration::from_secs(10), || {
        gw.records().iter().any(|r| {
            r["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "party_joined"))
        })
    });
    let _ = phone.kill();
    let _ = phone.wait();
}

/// Attended transfer by a stock softphone: linphonec (Linphone's console
/// client) answers as agent 1001, calls 110 through the gateway (a
/// consultation), then `transfer 1 --to-call 2`: a REFER with Replaces naming
/// the consultation. The citizen ends up with 110, and the record says so.
#[test]
fn linphone_consults_110_then_transfers_the_citizen_to_it() {
    let Some(linphonec) = tool("linphonec", "linphone-cli") else {
        return;
    };
    let police = free_port();
    let mut opts = GwOpts::to("queue:q");
    // The citizen from the carrier, the desk elsewhere: the agent is no trunk.
    opts.trunk_sources = vec!["127.0.0.2/32".into()];
    opts.extra_dialplan = with_110("linphone", police);
    opts.extra_config = "[media]\nsurvey = false\n".into();
    let gw = Gateway::start(opts);
    let dir = TempDir::new("linphone");
    // Linphone keeps its call history there (it stops starting without it).
    std::fs::create_dir_all(dir.0.join(".local/share/linphone")).unwrap();
    let port = free_port();
    std::fs::write(
        dir.0.join("rc"),
        format!(
            "[sip]\nsip_port={port}\nbind_address=127.0.0.3\ncontact=sip:1001@127.0.0.3:{port}\n\
default_proxy=0\n\n\
[auth_info_0]\nusername=1001\npasswd=lab-1001\n\n\
[proxy_0]\nreg_proxy=<sip:{gw};transport=udp>\nreg_identity=sip:1001@{gw}\n\
reg_expires=60\nreg_sendregister=1\n\n[sound]\necho_cancellation=0\n",
            gw = gw.sip
        ),
    )
    .unwrap();
    let mut phone = Command::new("timeout")
        .args(["60", linphonec.to_str().unwrap(), "-a", "-c"])
        .arg(dir.0.join("rc"))
        .env("HOME", &dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start linphonec");
    let mut stdin = phone.stdin.take().unwrap();
    registered(&gw, "linphone");
    let p = Softphone::answering("110", police, 40, &[]);
    let c = Softphone::start(&[
        "call".into(),
        "12345".into(),
        "--server".into(),
        gw.sip.to_string(),
        "--listen".into(),
        "127.0.0.2:0".into(),
        "--hangup-after-ms".into(),
        "9000".into(),
        "--max-wait-s".into(),
        "10".into(),
    ]);
    gw.wait_until("linphone on the call", Duration::from_secs(10), || {
        gw.get_json("/api/v1/agents")["agents"][0]["state"] == "on_call"
    });
    use std::io::Write as _;
    // As an agent does it: the citizen on hold, then the consultation.
    writeln!(stdin, "pause 1").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    writeln!(stdin, "call sip:110@{}", gw.sip).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    writeln!(stdin, "transfer 1 --to-call 2").unwrap();
    let ps = p.finish(Duration::from_secs(40)).expect("110");
    let cs = c.finish(Duration::from_secs(30)).expect("caller");
    assert_eq!(cs["answered"], 1, "{cs}");
    assert_eq!(ps["answered"], 1, "{ps}");
    gw.wait_until("the transfer recorded", Duration::from_secs(10), || {
        gw.records()
            .iter()
            .any(|r| r["transferred_to"] == "110" && r["caller"] != "1001")
            && gw
                .records()
                .iter()
                .any(|r| r["reason"] == "call.consult_transferred")
    });
    let _ = writeln!(stdin, "quit");
    let _ = phone.kill();
    let _ = phone.wait();
}
