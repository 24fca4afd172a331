//! Command-line argument parsing: `--flag VALUE`, `--flag=VALUE`, switches, repeatable flags,
//! positionals, `--` and `-h`/`--help`, with every mistake reported as a usage error.

/// One flag a command accepts.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// The name, with its leading `--`.
    pub name: &'static str,
    /// Whether the flag takes a value.
    pub takes_value: bool,
    /// Whether the flag may be given more than once.
    pub repeatable: bool,
}

impl Flag {
    /// A flag taking one value, given at most once.
    pub const fn value(name: &'static str) -> Self {
        Flag {
            name,
            takes_value: true,
            repeatable: false,
        }
    }

    /// A flag taking a value, given any number of times.
    pub const fn repeated(name: &'static str) -> Self {
        Flag {
            name,
            takes_value: true,
            repeatable: true,
        }
    }

    /// A flag without a value.
    pub const fn switch(name: &'static str) -> Self {
        Flag {
            name,
            takes_value: false,
            repeatable: false,
        }
    }
}

/// The arguments of one command after parsing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Arguments that are not flags, in order.
    pub positionals: Vec<String>,
    values: Vec<(&'static str, String)>,
    switches: Vec<&'static str>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `-h` or `--help` was given.
    Help,
    /// Run the command with these arguments.
    Run(Parsed),
}

/// Parses `args` against `flags`; the error is a usage message.
pub fn parse(args: &[String], flags: &[Flag]) -> Result<Outcome, String> {
    let mut parsed = Parsed::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            parsed.positionals.extend(iter.by_ref().cloned());
            break;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(Outcome::Help);
        }
        if !arg.starts_with('-') || arg == "-" {
            parsed.positionals.push(arg.clone());
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg.as_str(), None),
        };
        let flag = flags
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("unknown option `{name}`"))?;
        if !flag.repeatable && parsed.has(flag.name) {
            return Err(format!("`{}` given more than once", flag.name));
        }
        if flag.takes_value {
            let value = match inline {
                Some(v) => v.to_string(),
                None => match iter.next() {
                    Some(next) if next.starts_with("--") => {
                        return Err(format!(
                            "`{}` needs a value, found `{next}` (write `{}={next}` if that is the value)",
                            flag.name, flag.name
                        ))
                    }
                    Some(next) => next.clone(),
                    None => return Err(format!("`{}` needs a value", flag.name)),
                },
            };
            parsed.values.push((flag.name, value));
        } else if inline.is_some() {
            return Err(format!("`{}` takes no value", flag.name));
        } else {
            parsed.switches.push(flag.name);
        }
    }
    Ok(Outcome::Run(parsed))
}

impl Parsed {
    fn has(&self, name: &str) -> bool {
        self.switches.contains(&name) || self.values.iter().any(|(n, _)| *n == name)
    }

    /// The value of a flag given at most once.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a flag that must be given.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.value(name)
            .ok_or_else(|| format!("`{name}` is required"))
    }

    /// Every value of a repeatable flag, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a switch was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }

    /// Refuses positionals beyond the first `max`.
    pub fn at_most_positionals(&self, max: usize) -> Result<(), String> {
        match self.positionals.get(max) {
            Some(extra) => Err(format!("unexpected argument `{extra}`")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const FLAGS: [Flag; 3] = [
        Flag::value("--config"),
        Flag::repeated("--claim"),
        Flag::switch("--hashed"),
    ];

    fn run(args: &[&str]) -> Result<Outcome, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&args, &FLAGS)
    }

    fn parsed(args: &[&str]) -> Parsed {
        match run(args).unwrap() {
            Outcome::Run(p) => p,
            Outcome::Help => panic!("help not expected"),
        }
    }

    #[test]
    fn values_switches_and_positionals() {
        let p = parsed(&[
            "primary",
            "--config",
            "c.json",
            "--claim=a=b",
            "--hashed",
            "--claim=--help",
            "--claim",
            "-x",
            "-",
        ]);
        assert_eq!(p.positionals, ["primary", "-"]);
        assert_eq!(p.value("--config"), Some("c.json"));
        assert_eq!(p.all("--claim"), ["a=b", "--help", "-x"]);
        assert!(p.switch("--hashed"));
        assert_eq!(
            p.required("--missing").unwrap_err(),
            "`--missing` is required"
        );
        assert!(p.at_most_positionals(2).is_ok());
        assert_eq!(
            p.at_most_positionals(1).unwrap_err(),
            "unexpected argument `-`"
        );
        let p = parsed(&["--config", "a", "--", "--hashed", "-x"]);
        assert_eq!(p.positionals, ["--hashed", "-x"]);
        assert!(!p.switch("--hashed"));
        assert_eq!(parsed(&["--config="]).value("--config"), Some(""));
    }

    #[test]
    fn help_wins_over_later_mistakes() {
        let cases: &[&[&str]] = &[
            &["-h"],
            &["--help"],
            &["primary", "--help"],
            &["--config", "x", "-h", "--bogus"],
            &["--help", "--config"],
        ];
        for args in cases {
            assert_eq!(run(args).unwrap(), Outcome::Help, "{args:?}");
        }
    }

    #[test]
    fn mistakes_are_usage_errors() {
        let cases: &[(&[&str], &str)] = &[
            (&["--bogus"], "unknown option `--bogus`"),
            (&["-x"], "unknown option `-x`"),
            (&["--config"], "`--config` needs a value"),
            (
                &["--config", "--hashed"],
                "`--config` needs a value, found `--hashed` (write `--config=--hashed` if that is the value)",
            ),
            (
                &["--config", "a", "--config=b"],
                "`--config` given more than once",
            ),
            (&["--hashed", "--hashed"], "`--hashed` given more than once"),
            (&["--hashed=yes"], "`--hashed` takes no value"),
            (&["--conf", "x"], "unknown option `--conf`"),
        ];
        for (args, want) in cases {
            assert_eq!(run(args).unwrap_err(), *want, "{args:?}");
        }
    }
}
