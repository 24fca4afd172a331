//! `aml-auth`: workspace-side tools for operators of aml-auth-filter (keys, configuration).

use std::process::ExitCode;

use aml_auth_filter::keys::{generate_key, KeyDigest};

const USAGE: &str = "usage: aml-auth <command>

commands:
  keys generate    print a new random key (32 bytes from the OS, URL-safe base64) on the first
                   line and its sha256: digest (for primary_key/secondary_key) on the second
  help             this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["keys", "generate"] => match generate_key() {
            Ok(key) => {
                println!("{key}");
                println!("{}", KeyDigest::of(key.as_bytes()).to_configured());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("aml-auth: cannot read random bytes from the OS: {e}");
                ExitCode::FAILURE
            }
        },
        [] | ["help"] | ["--help"] | ["-h"] | ["keys", "generate", "--help"] => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("aml-auth: unknown command `{}`\n\n{USAGE}", words.join(" "));
            ExitCode::from(2)
        }
    }
}
