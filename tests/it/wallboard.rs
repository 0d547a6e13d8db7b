//! The wallboard in headless Chromium: served by the binary, it shows the figures
//! of scripted calls, marks a breach in red, and keeps polling. It reads its API
//! token from the URL fragment (`#token=…`) or asks for it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// Loads the page in headless Chromium with a viewer token, lets it run
/// `budget_ms` of page time, and returns the DOM.
pub(crate) fn render(chromium: &Path, gw: &Gateway, budget_ms: u32) -> String {
    render_with(chromium, gw, budget_ms, Some(VIEWER_TOKEN))
}

/// As [`render`], with a chosen token in the URL fragment, or none.
fn render_with(chromium: &Path, gw: &Gateway, budget_ms: u32, token: Option<&str>) -> String {
    let profile = TempDir::new("chromium");
    let fragment = token.map(|t| format!("#token={t}")).unwrap_or_default();
    let url = format!("http://{}/?interval_ms=300{fragment}", gw.http);
    let out = Command::new("timeout")
        .arg("90")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        dom.contains("id=\"update-count\""),
        "chromium gave no page: {}\n{dom}",
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// The opening tag of the element with this id.
fn tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

pub(crate) fn attr(dom: &str, id: &str, name: &str) -> String {
    let t = tag(dom, id);
    let key = format!("{name}=\"");
    let at = t
        .find(&key)
        .unwrap_or_else(|| panic!("#{id} has no {name}: {t}"))
        + key.len();
    t[at..at + t[at..].find('"').unwrap()].to_string()
}

/// The text right after the element's opening tag.
pub(crate) fn text(dom: &str, id: &str) -> String {
    let t = tag(dom, id);
    let at = dom.find(t).unwrap() + t.len();
    dom[at..at + dom[at..].find('<').unwrap()]
        .trim()
        .to_string()
}

fn calls(sipp: &Path, gw: &Gateway, scenario: &str, number: &str, n: u32) {
    let args = uac_args(gw, number, n, &["-r", "20", "-timeout", "60s"]);
    let r = Sipp::start(sipp, scenario, &args, Duration::from_secs(60)).finish();
    assert_eq!((r.successful, r.failed), (n as u64, 0), "{r:?}");
}

#[test]
fn wallboard_shows_live_figures_in_chromium() {
    let Some(sipp) = sipp() else { return };
    let Some(chromium) = tool("chromium", "chromium") else {
        return;
    };
    let seat_port = free_port();
    let busy_port = free_port();
    let _seats = Sipp::start(
        &sipp,
        "uas.xml",
        &["-p".into(), seat_port.to_string()],
        Duration::from_secs(120),
    );
    let _busy = Sipp::start(
        &sipp,
        "uas_busy.xml",
        &["-p".into(), busy_port.to_string()],
        Duration::from_secs(120),
    );
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nstatic_members = [\"sip:127.0.0.1:{seat_port}\"]\nstatic_seats = 50\n\n\
[[line]]\nnumber = \"12398\"\nname = \"busy department\"\ntarget = \"sip:127.0.0.1:{busy_port}\"\n"
    );
    opts.extra_config = "[sla]\nmin_offered = 5\n".into();
    let gw = Gateway::start(opts);

    calls(&sipp, &gw, "uac.xml", "12345", 10);
    let dom = render(&chromium, &gw, 4000);
    assert_eq!(attr(&dom, "status", "data-state"), "ok", "{dom}");
    assert_eq!(attr(&dom, "overall-offered-24h", "data-value"), "10");
    assert_eq!(text(&dom, "overall-rate-24h"), "100.0%");
    assert_eq!(attr(&dom, "overall-rate-24h", "data-breached"), "false");
    assert_eq!(
        attr(&dom, "agents-ready", "data-value"),
        "50",
        "50 idle static seats"
    );
    assert_eq!(attr(&dom, "calls-waiting", "data-value"), "0");
    let updates: u32 = text(&dom, "update-count").parse().unwrap();
    assert!(updates >= 3, "polls by itself: {updates} refreshes");
    assert!(
        dom.contains("data-dimension=\"line\" data-key=\"12345\""),
        "per-line row"
    );

    // Five calls fail: 10 of 15 answered, below 95% with 15 ≥ 5 counted.
    calls(&sipp, &gw, "uac_expect_486.xml", "12398", 5);
    gw.wait_json(
        "/api/v1/sla",
        "15 calls counted",
        Duration::from_secs(10),
        |v| v["overall"]["24h"]["offered"] == 15,
    );
    let dom = render(&chromium, &gw, 3000);
    assert_eq!(attr(&dom, "overall-offered-24h", "data-value"), "15");
    assert_eq!(text(&dom, "overall-rate-24h"), "66.7%");
    assert_eq!(attr(&dom, "overall-rate-24h", "data-breached"), "true");
    assert!(
        attr(&dom, "overall-rate-24h", "class").contains("breach"),
        "shown in red"
    );
    assert!(
        dom.contains("class=\"breach\"") || dom.contains("li class=\"breach"),
        "the breach is listed"
    );
    let bars: u32 = attr(&dom, "chart", "data-bars").parse().unwrap();
    assert!(bars >= 1, "the 24-hour chart has the current interval");
}

/// Without a token, or with a wrong one, the page asks for one and shows no figures.
#[test]
fn the_wallboard_asks_for_a_token() {
    let Some(chromium) = tool("chromium", "chromium") else {
        return;
    };
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    for token in [None, Some("not-a-token")] {
        let dom = render_with(&chromium, &gw, 1500, token);
        assert!(
            !tag(&dom, "token-form").contains("hidden"),
            "{token:?}: the token form is shown: {}",
            tag(&dom, "token-form")
        );
        assert_eq!(text(&dom, "update-count"), "0", "{token:?}: no figures");
        assert!(
            !dom.contains("not-a-token"),
            "the token is not left in the page"
        );
    }
    let dom = render_with(&chromium, &gw, 1500, Some(VIEWER_TOKEN));
    assert!(tag(&dom, "token-form").contains("hidden"), "{dom}");
    let updates: u32 = text(&dom, "update-count").parse().unwrap();
    assert!(updates >= 1, "a viewer token reads the figures: {updates}");
}

/// Loads the page at `width`×`height` and returns its DOM; with `shot`, also
/// saves a screenshot there (a second run of the same page).
fn render_at(
    chromium: &Path,
    gw: &Gateway,
    (width, height): (u32, u32),
    shot: Option<&Path>,
) -> String {
    let run = |extra: &[String]| {
        let profile = TempDir::new("chromium");
        let url = format!("http://{}/?interval_ms=300#token={VIEWER_TOKEN}", gw.http);
        Command::new("timeout")
            .arg("90")
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("--virtual-time-budget=3000")
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium")
    };
    if let Some(path) = shot {
        let out = run(&[format!("--screenshot={}", path.display())]);
        let png = std::fs::read(path).unwrap_or_else(|e| {
            panic!(
                "no screenshot at {}: {e}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        // The PNG's IHDR: the screenshot is as wide as the screen asked for.
        assert_eq!(&png[1..4], b"PNG");
        let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        assert_eq!(w, width, "{}", path.display());
    }
    let out = run(&["--dump-dom".to_string()]);
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// An attribute of the `<html>` element.
fn html_attr(dom: &str, name: &str) -> String {
    let start = dom.find("<html").expect("an <html> element");
    let end = start + dom[start..].find('>').unwrap();
    let t = &dom[start..=end];
    let key = format!("{name}=\"");
    let at = t
        .find(&key)
        .unwrap_or_else(|| panic!("<html> has no {name}: {t}"))
        + key.len();
    t[at..at + t[at..].find('"').unwrap()].to_string()
}

#[test]
fn the_wallboard_fits_wall_and_portrait_screens_and_says_what_it_counts() {
    let Some(sipp) = sipp() else { return };
    let Some(chromium) = tool("chromium", "chromium") else {
        return;
    };
    let seat_port = free_port();
    let _seats = Sipp::start(
        &sipp,
        "uas.xml",
        &["-p".into(), seat_port.to_string()],
        Duration::from_secs(120),
    );
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\nwrap_up_s = 0\n\
max_wait_s = 120\noverflow = \"callback\"\nstatic_members = [\"sip:127.0.0.1:{seat_port}\"]\nstatic_seats = 5\n\n\
[[line]]\nnumber = \"12315\"\nname = \"市场监管投诉举报热线\"\nmode = \"call_forwarding\"\nqueue = \"seats\"\n"
    );
    let gw = Gateway::start(opts);
    // Every call answered: the widest rate there is, "100.0%".
    calls(&sipp, &gw, "uac.xml", "12345", 3);
    calls(&sipp, &gw, "uac.xml", "12315", 2);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (size, layout) in [
        ((1280, 720), "compact"),
        ((1440, 900), "compact"),
        ((1920, 1080), "full"),
        ((1080, 1920), "narrow"),
    ] {
        let shot = shots.join(format!("wallboard-{}x{}.png", size.0, size.1));
        let dom = render_at(&chromium, &gw, size, Some(&shot));
        let at = format!("{}x{} (screenshot {})", size.0, size.1, shot.display());
        assert_eq!(html_attr(&dom, "data-width"), size.0.to_string(), "{at}");
        assert_eq!(
            html_attr(&dom, "data-overflow"),
            "none",
            "{at}: wider than its box"
        );
        assert_eq!(html_attr(&dom, "data-layout"), layout, "{at}");
        assert_eq!(text(&dom, "overall-rate-24h"), "100.0%", "{at}");
        // Every figure of the 24 h window is in the table, at every width.
        for field in [
            "offered",
            "answered",
            "abandoned",
            "short_abandoned",
            "transferred_out",
            "failed",
            "answer_rate",
            "service_level",
        ] {
            let cell = format!("data-field=\"{field}\" data-window=\"24h\"");
            assert!(dom.contains(&cell), "{at}: no 24 h {field} column");
        }
        // The counted calls beside the rate, the formula in its tooltip.
        assert_eq!(attr(&dom, "overall-counted-24h", "data-value"), "5", "{at}");
        let tip = attr(&dom, "overall-rate-24h", "title");
        assert!(
            tip.contains("(offered − short abandoned)") && tip.contains("(5 + 0) ÷ (5 − 0)"),
            "{at}: {tip}"
        );
    }
}
