//! Parsers for the values Docker gives a syntax to: ports, durations, signals, env entries;
//! and the owners and modes of files, as `chown` and `chmod` take them.
//! Each returns a message that reads well after the key it is about.

/// `8080` or `8080/tcp` → `8080/tcp`; `8000-8002/udp` → three ports, as `EXPOSE` expands them.
pub fn exposed_ports(spec: &str) -> Result<Vec<String>, String> {
    let (ports, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
    if !matches!(protocol, "tcp" | "udp" | "sctp") {
        return Err(format!(
            "`{spec}`: the protocol must be `tcp`, `udp` or `sctp`"
        ));
    }
    let port = |s: &str| -> Result<u16, String> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{spec}`: `{s}` is not a port number (1-65535)"))
    };
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if first > last {
        return Err(format!("`{spec}`: the range is backwards"));
    }
    Ok((first..=last).map(|p| format!("{p}/{protocol}")).collect())
}

/// The port a config's `ExposedPorts` key (`8080/tcp`, `8080`) names, to publish it; `None`
/// for a range (a base's `1-65535/tcp` would publish every port of the machine) or anything
/// that is not a port.
pub fn single_port(key: &str) -> Option<u16> {
    match exposed_ports(key).ok()?.as_slice() {
        [one] => one.split('/').next()?.parse().ok(),
        _ => None,
    }
}

/// Go's duration syntax, as Docker's `--health-interval` takes it: `30s`, `1m30s`, `1.5h`,
/// `250ms`. Returns nanoseconds.
pub fn duration_ns(text: &str) -> Result<u64, String> {
    const UNITS: [(&str, f64); 7] = [
        ("ns", 1.0),
        ("us", 1e3),
        ("µs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("m", 60e9),
        ("h", 3600e9),
    ];
    let invalid = || format!("`{text}` is not a duration like \"30s\", \"1m30s\" or \"500ms\"");
    match text {
        "0" => return Ok(0),
        "" => return Err(invalid()),
        _ => {}
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = UNITS
            .iter()
            .find(|(unit, _)| *unit == &rest[..unit_len])
            .ok_or_else(invalid)?
            .1;
        rest = &rest[unit_len..];
        total += number * scale;
    }
    // Docker keeps durations as signed 64-bit nanoseconds; longer ones do not parse back.
    if total.round() >= 2f64.powi(63) {
        return Err(format!(
            "`{text}` is too long: a duration is at most 2562047h47m16s (Docker counts \
             nanoseconds in a signed 64-bit integer)"
        ));
    }
    Ok(total.round() as u64)
}

/// Signal names as Docker's `STOPSIGNAL` takes them: `SIGTERM`, `TERM`, `SIGRTMIN+3`, or a number.
pub fn stop_signal(text: &str) -> Result<(), String> {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR",
    ];
    let name = text.strip_prefix("SIG").unwrap_or(text);
    let known = match name.parse::<u8>() {
        Ok(number) => (1..=64).contains(&number),
        Err(_) => {
            NAMES.contains(&name)
                || name
                    .strip_prefix("RTMIN+")
                    .and_then(|n| n.parse::<u8>().ok())
                    .is_some_and(|n| n <= 30)
                || name
                    .strip_prefix("RTMAX-")
                    .and_then(|n| n.parse::<u8>().ok())
                    .is_some_and(|n| n <= 30)
                || matches!(name, "RTMIN" | "RTMAX")
        }
    };
    if known {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a signal name like \"SIGTERM\" or a number from 1 to 64"
        ))
    }
}

/// A user as `USER` takes it: a name or uid, optionally `:` and a group or gid.
pub fn user(text: &str) -> Result<(), String> {
    let valid = |part: &str| !part.is_empty() && !part.contains(|c: char| c.is_whitespace());
    match text.split_once(':') {
        None if valid(text) => Ok(()),
        Some((user, group)) if valid(user) && valid(group) && !group.contains(':') => Ok(()),
        _ => Err(format!("`{text}` is not a user name, uid, or `user:group`")),
    }
}

/// Whether the config's `user` runs as root: no user, `0`, `root`, with any group.
pub fn runs_as_root(user: Option<&str>) -> bool {
    let name = user.map_or("", |u| u.split(':').next().unwrap_or_default());
    matches!(name, "" | "0" | "root")
}

/// `UID:GID`, numeric as a layer records it: `65532:65532` → `(65532, 65532)`.
pub fn owner(text: &str) -> Result<(u32, u32), String> {
    let id = |part: &str| {
        part.parse::<u32>()
            .ok()
            .filter(|_| part.bytes().all(|b| b.is_ascii_digit()))
    };
    match text
        .split_once(':')
        .map(|(user, group)| (id(user), id(group)))
    {
        Some((Some(uid), Some(gid))) => Ok((uid, gid)),
        _ => Err(format!(
            "`{text}` is not an owner like \"65532:65532\": a layer records numeric IDs, \
             UID:GID"
        )),
    }
}

/// A mode as `chmod` takes it in octal: `"0640"`, `"750"`, `"1777"`.
pub fn mode(text: &str) -> Result<u32, String> {
    let octal =
        !text.is_empty() && text.len() <= 4 && text.bytes().all(|b| matches!(b, b'0'..=b'7'));
    match octal.then(|| u32::from_str_radix(text, 8)) {
        Some(Ok(mode)) => Ok(mode),
        _ => Err(format!(
            "`{text}` is not a mode like \"0640\": up to four octal digits"
        )),
    }
}

/// An environment variable name: not empty, no `=`, no NUL.
pub fn env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        Err(format!("`{name}` is not a valid environment variable name"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_single_port_is_one_to_publish() {
        assert_eq!(single_port("8080/tcp"), Some(8080));
        assert_eq!(single_port("53/udp"), Some(53));
        assert_eq!(single_port("9000"), Some(9000));
        for not_one in [
            "1-65535/tcp",
            "8000-8001/tcp",
            "0/tcp",
            "http",
            "80/tcp\n-v /:/x",
        ] {
            assert_eq!(single_port(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn owners_and_modes_are_numeric() {
        assert_eq!(owner("65532:65533"), Ok((65532, 65533)));
        assert_eq!(owner("0:0"), Ok((0, 0)));
        for wrong in [
            "65532",
            "nobody:nogroup",
            "1:2:3",
            "-1:0",
            "+1:0",
            "4294967296:0",
            "",
        ] {
            assert!(
                owner(wrong).unwrap_err().contains("is not an owner"),
                "{wrong}"
            );
        }
        assert_eq!(mode("0640"), Ok(0o640));
        assert_eq!(mode("750"), Ok(0o750));
        assert_eq!(mode("1777"), Ok(0o1777));
        for wrong in ["", "0o640", "0800", "17777", "rw-r--r--"] {
            assert!(
                mode(wrong).unwrap_err().contains("is not a mode"),
                "{wrong}"
            );
        }
        assert!(runs_as_root(None));
        assert!(runs_as_root(Some("root:65532")));
        assert!(runs_as_root(Some("0")));
        assert!(!runs_as_root(Some("65532:0")));
        assert!(!runs_as_root(Some("nobody")));
    }

    #[test]
    fn ports() {
        assert_eq!(exposed_ports("8080").unwrap(), ["8080/tcp"]);
        assert_eq!(exposed_ports("53/udp").unwrap(), ["53/udp"]);
        assert_eq!(exposed_ports("9000/sctp").unwrap(), ["9000/sctp"]);
        assert_eq!(
            exposed_ports("8000-8002/tcp").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        for bad in ["0", "65536", "80/http", "http", "", "/tcp", "9-8", "-1"] {
            assert!(exposed_ports(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ns("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(duration_ns("250ms").unwrap(), 250_000_000);
        assert_eq!(duration_ns("0").unwrap(), 0);
        for bad in [
            "30", "s", "1x", "-1s", "1m 30s", "", "1..5s", "2562048h", "1e30h",
        ] {
            assert!(duration_ns(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            duration_ns("2562047h").unwrap(),
            2_562_047 * 3_600_000_000_000
        );
    }

    #[test]
    fn signals() {
        for good in ["SIGTERM", "TERM", "SIGKILL", "9", "SIGRTMIN+3", "SIGWINCH"] {
            assert!(stop_signal(good).is_ok(), "{good} refused");
        }
        for bad in ["SIGTERN", "sigterm", "0", "65", "SIGRTMIN+31", ""] {
            assert!(stop_signal(bad).is_err(), "{bad} accepted");
        }
    }
}
