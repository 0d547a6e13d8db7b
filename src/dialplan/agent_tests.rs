//! Agents' credentials in dialplan files: a password of 8 characters or more, or
//! HA1 hashes instead; every mistake named by file, line and key.

use super::*;

const MD5: &str = "0123456789ABCDEF0123456789abcdef";
const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn agents(body: &str) -> Result<Dialplan, Vec<DialplanError>> {
    let text = format!("[[agent]]\nid = \"1001\"\nname = \"A\"\n{body}");
    check_sources(&[("agents.toml".into(), text)])
}

fn only_error(body: &str) -> DialplanError {
    let mut errors = agents(body).expect_err("refused");
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

#[test]
fn a_password_needs_eight_characters() {
    let e = only_error("password = \"lab1001\"\n");
    assert_eq!((e.file.as_str(), e.line), ("agents.toml", 4));
    assert_eq!(e.key, "agent[0].password");
    assert!(e.message.contains("at least 8"), "{}", e.message);
    assert!(
        !e.to_string().contains("lab1001"),
        "the value is never shown: {e}"
    );
    let plan = agents("password = \"lab-1001\"\n").unwrap();
    assert_eq!(plan.agents[0].password, "lab-1001");
    assert_eq!(plan.agents[0].ha1_md5, None);
}

#[test]
fn ha1_hashes_replace_the_password() {
    let plan = agents(&format!("ha1_md5 = \"{MD5}\"\nha1_sha256 = \"{SHA}\"\n")).unwrap();
    let a = &plan.agents[0];
    assert_eq!(a.password, "");
    assert_eq!(
        a.ha1_md5.as_deref(),
        Some(MD5.to_ascii_lowercase().as_str())
    );
    assert_eq!(a.ha1_sha256.as_deref(), Some(SHA));
    assert!(!format!("{a:?}").contains(SHA), "Debug shows no hash");
    // One of the two is enough.
    assert!(agents(&format!("ha1_sha256 = \"{SHA}\"\n")).is_ok());
}

#[test]
fn credential_mistakes_name_their_key() {
    let e = only_error("");
    assert_eq!((e.key.as_str(), e.line), ("agent[0].id", 2));
    assert!(e.message.contains("ha1_md5"), "{}", e.message);

    let e = only_error(&format!(
        "password = \"long-enough\"\nha1_md5 = \"{MD5}\"\n"
    ));
    assert_eq!((e.key.as_str(), e.line), ("agent[0].password", 4));

    let e = only_error("ha1_md5 = \"not-hex\"\n");
    assert_eq!((e.key.as_str(), e.line), ("agent[0].ha1_md5", 4));
    assert!(e.message.contains("32 hex digits"), "{}", e.message);

    let e = only_error(&format!("ha1_sha256 = \"{MD5}\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("agent[0].ha1_sha256", 4));
}
