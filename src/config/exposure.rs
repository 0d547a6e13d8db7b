//! Refusing to start exposed (DESIGN.md §7): on an HTTP address other machines can
//! reach, the API must have tokens; on any such SIP or HTTP address, no shipped
//! development token and no shipped agent password may be configured. Pure: the
//! caller hands in the texts (`read_dialplan_files` reads them); each message names
//! the file, the line and the key to change, and the command that makes a token. A
//! reloaded dialplan (HTTP or SIGHUP) is checked the same way ([`Listens`]).

use std::net::SocketAddr;
use std::path::Path;

use super::Config;
use crate::util::toml_where::KeyLines;

/// A shipped agent password: the examples' `change-me-…` and the lab profile's
/// `lab-1001`… (and the older `lab1001`…). Their values are in the repository.
pub fn shipped_password(p: &str) -> bool {
    let lab = p
        .strip_prefix("lab")
        .map(|r| r.strip_prefix('-').unwrap_or(r));
    p.starts_with("change-me") || lab.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

/// What the check reads.
#[derive(Debug)]
pub struct Exposure<'a> {
    pub config: &'a Config,
    /// The config file's name, as the user would open it.
    pub config_file: &'a str,
    /// Its text (the embedded defaults' when no file was read).
    pub config_text: &'a str,
    /// The dialplan's agents: (id, plain password); agents without a plain
    /// password are left out.
    pub agents: Vec<(&'a str, &'a str)>,
    /// The dialplan's files: (path, text), to name where a password is written.
    pub dialplan_files: Vec<(String, String)>,
}

/// The gateway's SIP and HTTP listen addresses: whether other machines can reach
/// it, and so whether a shipped agent password may be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listens {
    pub sip: SocketAddr,
    pub http: SocketAddr,
}

impl Listens {
    pub fn of(cfg: &Config) -> Listens {
        Listens {
            sip: cfg.sip.listen,
            http: cfg.http.listen,
        }
    }

    /// "`[sip] listen = "…"` … is reachable from other machines", or `None` on loopback.
    fn why(&self) -> Option<String> {
        let public: Vec<String> = [("[sip] listen", self.sip), ("[http] listen", self.http)]
            .into_iter()
            .filter(|(_, a)| !a.ip().is_loopback())
            .map(|(k, a)| format!("{k} = \"{a}\""))
            .collect();
        (!public.is_empty())
            .then(|| format!("{} is reachable from other machines", public.join(" and ")))
    }

    /// What keeps a reloaded dialplan from being loaded on these addresses: its
    /// shipped agent passwords, as at start; empty when it may be loaded.
    pub fn reload_problems(
        &self,
        agents: &[(&str, &str)],
        dialplan_files: &[(String, String)],
    ) -> Vec<String> {
        match self.why() {
            Some(why) => password_problems(agents, dialplan_files, &why),
            None => Vec::new(),
        }
    }
}

impl Listens {
    /// [`Listens::reload_problems`] for a plan loaded from `dir` (its files read
    /// only when the gateway is exposed): `Err` is the message to answer or log.
    pub fn check_reload(&self, plan: &crate::dialplan::Dialplan, dir: &Path) -> Result<(), String> {
        if self.why().is_none() {
            return Ok(());
        }
        let agents: Vec<(&str, &str)> = plan
            .agents
            .iter()
            .map(|a| (a.id.as_str(), a.password.as_str()))
            .collect();
        let problems = self.reload_problems(&agents, &read_dialplan_files(dir));
        if problems.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}; the running plan stays (on 127.0.0.1 shipped passwords are allowed)",
            problems.join("; ")
        ))
    }
}

/// Warnings (never refusals: the receiver may sit on a private network) for each
/// `http://` ticket or SLA-webhook URL of an exposed gateway: the bodies carry
/// caller numbers, in clear. The URL itself is not repeated (it may hold a
/// password); the key is named.
pub fn cleartext_urls(cfg: &Config) -> Vec<String> {
    let Some(why) = Listens::of(cfg).why() else {
        return Vec::new();
    };
    [
        ("tickets.url", &cfg.tickets.url),
        ("tickets.alert_webhook", &cfg.tickets.alert_webhook),
        ("sla.webhook", &cfg.sla.webhook),
    ]
    .into_iter()
    .filter_map(|(key, url)| {
        let url = url.as_deref()?.trim_start();
        url.get(..7)?.eq_ignore_ascii_case("http://").then(|| {
            format!(
                "{key} is an http:// URL, and {why}: its requests carry caller numbers in \
                 clear text; use https:// (with [http.client] ca_file for a private CA) unless \
                 the receiver is on a network you trust"
            )
        })
    })
    .collect()
}

/// The `.toml` files of the dialplan folder, sorted: (path, text), for messages
/// that name the line of a key. Unreadable files are left out.
pub fn read_dialplan_files(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "toml")
                && let Ok(t) = std::fs::read_to_string(&p)
            {
                files.push((p.display().to_string(), t));
            }
        }
    }
    files
}

/// One message per agent with a shipped password.
fn password_problems(
    agents: &[(&str, &str)],
    dialplan_files: &[(String, String)],
    why: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for (id, password) in agents {
        if !shipped_password(password) {
            continue;
        }
        let place = written_at(dialplan_files, password)
            .unwrap_or_else(|| "the dialplan's agents".to_string());
        out.push(format!(
            "{place}: agent {id:?} has a shipped default password (password = \"{password}\"), \
             and {why}: set a password of your own there (at least 8 characters)"
        ));
    }
    out
}

/// `file:line` of the `password = "…"` line holding this value.
fn written_at(dialplan_files: &[(String, String)], password: &str) -> Option<String> {
    let quoted = format!("\"{password}\"");
    dialplan_files.iter().find_map(|(path, text)| {
        text.lines().enumerate().find_map(|(n, l)| {
            let l = l.trim_start();
            (l.starts_with("password") && l.contains(&quoted)).then(|| format!("{path}:{}", n + 1))
        })
    })
}

impl Exposure<'_> {
    /// Everything to change before this config may run; empty when it may.
    pub fn problems(&self) -> Vec<String> {
        let cfg = self.config;
        let file = self.config_file;
        let make_token =
            "`hotline-gw token --role admin --name YOUR-NAME` (it prints the lines to paste)";
        let exposed = |a: SocketAddr| !a.ip().is_loopback();
        let mut out = Vec::new();
        let http = cfg.http.listen;
        if exposed(http) && cfg.http.tokens.is_empty() {
            out.push(format!(
                "{file}: [http] listen = \"{http}\" is reachable from other machines and no \
                 [[http.token]] is configured, so the API would refuse everyone: create a token \
                 with {make_token} and add it to {file}, or listen on 127.0.0.1"
            ));
        }
        let Some(why) = Listens::of(cfg).why() else {
            return out;
        };
        let lines = KeyLines::new(self.config_text);
        let tokens = cfg.http.tokens();
        for dev in tokens.dev_tokens() {
            let i = cfg
                .http
                .tokens
                .iter()
                .position(|t| t.name == dev.name)
                .unwrap_or(0);
            let line = lines.line_or_enclosing(&format!("http.token[{i}].sha256"));
            out.push(format!(
                "{file}:{line}: http.token[{i}] (name = {:?}) is a development token whose value is \
                 published in the README, and {why}: remove it from {file} and create your own \
                 with {make_token}",
                dev.name
            ));
        }
        out.extend(password_problems(&self.agents, &self.dialplan_files, &why));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sip: &str, http: &str, tokens: &str) -> (Config, String) {
        let text = format!(
            "[sip]\nlisten = \"{sip}\"\n[calls]\nmax_concurrent = 10\nretry_after_s = 5\n\
             ring_timeout_s = 60\nmax_duration_s = 3600\n[http]\nlisten = \"{http}\"\n\
             {tokens}[dialplan]\ndir = \"d\"\n"
        );
        (Config::parse("gw.toml", &text).unwrap(), text)
    }

    fn token(name: &str, value: &str) -> String {
        format!(
            "[[http.token]]\nname = \"{name}\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
            crate::http::auth::hex(&crate::http::auth::token_sha256(value))
        )
    }

    fn problems(cfg: &Config, text: &str, agents: Vec<(&str, &str)>) -> Vec<String> {
        Exposure {
            config: cfg,
            config_file: "gw.toml",
            config_text: text,
            agents,
            dialplan_files: vec![(
                "dialplans/agents.toml".into(),
                "[[agent]]\nid = \"1001\"\npassword = \"change-me-1001\"\n".into(),
            )],
        }
        .problems()
    }

    #[test]
    fn loopback_may_keep_the_shipped_defaults() {
        let (cfg, text) = config(
            "127.0.0.1:5060",
            "127.0.0.1:8080",
            &token("dev", "dev-admin"),
        );
        assert!(problems(&cfg, &text, vec![("1001", "change-me-1001")]).is_empty());
        let (cfg, text) = config("127.0.0.1:5060", "127.0.0.1:8080", "");
        assert!(problems(&cfg, &text, vec![]).is_empty());
    }

    #[test]
    fn a_public_api_needs_a_token() {
        let (cfg, text) = config("127.0.0.1:5060", "0.0.0.0:8080", "");
        let p = problems(&cfg, &text, vec![]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("[http] listen = \"0.0.0.0:8080\""),
            "{}",
            p[0]
        );
        assert!(p[0].contains("hotline-gw token --role admin"), "{}", p[0]);
        let (cfg, text) = config(
            "127.0.0.1:5060",
            "0.0.0.0:8080",
            &token("ops", "a-real-secret"),
        );
        assert!(problems(&cfg, &text, vec![("1001", "a-long-password")]).is_empty());
    }

    #[test]
    fn shipped_tokens_and_passwords_are_refused_off_loopback() {
        let (cfg, text) = config("0.0.0.0:5060", "127.0.0.1:8080", &token("dev", "dev-admin"));
        let p = problems(
            &cfg,
            &text,
            vec![("1001", "change-me-1001"), ("1002", "fine-password")],
        );
        assert_eq!(p.len(), 2, "{p:?}");
        let line = text.lines().position(|l| l.starts_with("sha256")).unwrap() + 1;
        assert!(
            p[0].starts_with(&format!("gw.toml:{line}: http.token[0]")),
            "{}",
            p[0]
        );
        assert!(p[0].contains("[sip] listen = \"0.0.0.0:5060\""), "{}", p[0]);
        assert!(
            p[1].starts_with("dialplans/agents.toml:3: agent \"1001\""),
            "{}",
            p[1]
        );
    }

    #[test]
    fn shipped_passwords() {
        for p in [
            "change-me-1001",
            "change-me",
            "lab-1001",
            "lab1001",
            "lab1001-x",
        ] {
            assert!(shipped_password(p), "{p}");
        }
        for p in ["labrador-1001", "lab-x1001", "correct horse", "1001", ""] {
            assert!(!shipped_password(p), "{p}");
        }
    }

    #[test]
    fn a_reloaded_plan_is_checked_like_the_first() {
        let files = vec![(
            "d/agents.toml".to_string(),
            "[[agent]]\nid = \"1001\"\npassword = \"lab-1001\"\n".to_string(),
        )];
        let agents = [("1001", "lab-1001"), ("1002", "own-password")];
        let at = |sip: &str, http: &str| Listens {
            sip: sip.parse().unwrap(),
            http: http.parse().unwrap(),
        };
        let local = at("127.0.0.1:5060", "127.0.0.1:8080");
        assert!(local.reload_problems(&agents, &files).is_empty());
        for listens in [
            at("0.0.0.0:5060", "127.0.0.1:8080"),
            at("127.0.0.1:5060", "192.0.2.7:8080"),
        ] {
            let p = listens.reload_problems(&agents, &files);
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(
                p[0].starts_with("d/agents.toml:3: agent \"1001\" has a shipped default password"),
                "{}",
                p[0]
            );
            assert!(
                p[0].contains("is reachable from other machines"),
                "{}",
                p[0]
            );
        }
        assert!(
            at("0.0.0.0:5060", "0.0.0.0:8080")
                .reload_problems(&[("1002", "own-password")], &files)
                .is_empty()
        );
    }

    #[test]
    fn cleartext_urls_are_named_when_exposed() {
        let urls = "[sla]\nwebhook = \"http://10.0.0.5/sla\"\n[tickets]\n\
                    url = \"http://user:secret@10.0.0.6/t\"\nalert_webhook = \"https://10.0.0.7/a\"\n";
        let with = |sip: &str, http: &str| {
            let (_, text) = config(sip, http, &token("ops", "a-real-secret"));
            Config::parse("gw.toml", &(text + urls)).unwrap()
        };
        assert!(cleartext_urls(&with("127.0.0.1:5060", "127.0.0.1:8080")).is_empty());
        for cfg in [
            with("0.0.0.0:5060", "127.0.0.1:8080"),
            with("127.0.0.1:5060", "0.0.0.0:8080"),
        ] {
            let w = cleartext_urls(&cfg);
            assert_eq!(w.len(), 2, "{w:?}");
            assert!(
                w[0].starts_with("tickets.url is an http:// URL"),
                "{}",
                w[0]
            );
            assert!(
                w[1].starts_with("sla.webhook is an http:// URL"),
                "{}",
                w[1]
            );
            assert!(w.iter().all(|m| m.contains("use https://")), "{w:?}");
            assert!(!w.join(" ").contains("secret"), "the URL is not repeated");
        }
    }
}
