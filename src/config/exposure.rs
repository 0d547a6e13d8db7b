//! Refusing to start exposed (DESIGN.md §7): on an HTTP address other machines can
//! reach, the API must have tokens; on any such SIP or HTTP address, no shipped
//! development token and no shipped agent password may be configured. Pure: the
//! caller hands in the texts; each message names the file, the line and the key to
//! change, and the command that makes a token.

use std::net::SocketAddr;

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
        let public: Vec<String> = [("[sip] listen", cfg.sip.listen), ("[http] listen", http)]
            .into_iter()
            .filter(|(_, a)| exposed(*a))
            .map(|(k, a)| format!("{k} = \"{a}\""))
            .collect();
        if public.is_empty() {
            return out;
        }
        let why = format!("{} is reachable from other machines", public.join(" and "));
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
        for (id, password) in &self.agents {
            if !shipped_password(password) {
                continue;
            }
            let place = self
                .written_at(password)
                .unwrap_or_else(|| "the dialplan's agents".to_string());
            out.push(format!(
                "{place}: agent {id:?} has a shipped default password (password = \"{password}\"), \
                 and {why}: set a password of your own there (at least 8 characters)"
            ));
        }
        out
    }

    /// `file:line` of the `password = "…"` line holding this value.
    fn written_at(&self, password: &str) -> Option<String> {
        let quoted = format!("\"{password}\"");
        self.dialplan_files.iter().find_map(|(path, text)| {
            text.lines().enumerate().find_map(|(n, l)| {
                let l = l.trim_start();
                (l.starts_with("password") && l.contains(&quoted))
                    .then(|| format!("{path}:{}", n + 1))
            })
        })
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
}
