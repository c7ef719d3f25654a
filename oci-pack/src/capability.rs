//! Linux file capabilities: what a binary may do though it runs as a user who may not (bind a
//! port below 1024, say), as the kernel reads them from a file's `security.capability`
//! extended attribute, and as a layer carries that attribute (a PAX `SCHILY.xattr.` record).

use std::fmt;

/// The extended attribute that holds a file's capabilities.
pub const XATTR: &str = "security.capability";

/// Every capability the kernel knows, by number (`capability.h`), named without `CAP_`.
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// `VFS_CAP_REVISION_2`: two 32-bit words of permitted and inheritable bits.
const REVISION_2: u32 = 0x0200_0000;
/// `VFS_CAP_REVISION_3`: revision 2 and the user namespace's root ID.
const REVISION_3: u32 = 0x0300_0000;
/// `VFS_CAP_REVISION_1`: one 32-bit word.
const REVISION_1: u32 = 0x0100_0000;
const REVISION_MASK: u32 = 0xff00_0000;
/// `VFS_CAP_FLAGS_EFFECTIVE`: the permitted capabilities are effective at once, so a program
/// that knows nothing of capabilities has them.
const EFFECTIVE: u32 = 0x1;

/// A set of capabilities, as a file grants them: permitted and effective.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u64);

impl Capabilities {
    /// No capability: the file gets no `security.capability` attribute.
    pub const NONE: Capabilities = Capabilities(0);

    /// The capabilities named, each as `CAP_NET_BIND_SERVICE`, `NET_BIND_SERVICE` or
    /// `net_bind_service`. An unknown name is the error, naming it and every known one.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Capabilities, String> {
        let mut bits = 0;
        for name in names {
            let name = name.as_ref();
            let bare = name.to_ascii_lowercase();
            let bare = bare.strip_prefix("cap_").unwrap_or(&bare);
            let Some(number) = NAMES.iter().position(|known| *known == bare) else {
                let known: Vec<String> = NAMES.iter().map(|n| cap_name(n)).collect();
                return Err(format!(
                    "`{name}` is not a Linux capability; expected one of {}",
                    known.join(", ")
                ));
            };
            bits |= 1 << number;
        }
        Ok(Capabilities(bits))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names in the set, by number: `CAP_NET_BIND_SERVICE`, …
    pub fn names(self) -> Vec<String> {
        (0..NAMES.len())
            .filter(|bit| self.0 & (1 << bit) != 0)
            .map(|bit| cap_name(NAMES[bit]))
            .collect()
    }

    /// The `security.capability` value granting the set, permitted and effective
    /// (`VFS_CAP_REVISION_2`, 20 bytes, as `setcap cap_…=ep` writes it); `None` when empty.
    pub fn xattr(self) -> Option<[u8; 20]> {
        if self.is_empty() {
            return None;
        }
        let words = [
            REVISION_2 | EFFECTIVE,
            self.0 as u32, // permitted, low word
            0,             // inheritable, low word
            (self.0 >> 32) as u32,
            0,
        ];
        let mut value = [0u8; 20];
        for (chunk, word) in value.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Some(value)
    }

    /// What a `security.capability` value grants (its permitted set), of any revision;
    /// `None` when it is not one.
    pub fn from_xattr(value: &[u8]) -> Option<FileCapabilities> {
        let word = |i: usize| -> Option<u64> {
            let bytes = value.get(i * 4..i * 4 + 4)?;
            Some(u32::from_le_bytes(bytes.try_into().ok()?).into())
        };
        let magic = word(0)? as u32;
        let (permitted, length) = match magic & REVISION_MASK {
            REVISION_1 => (word(1)?, 12),
            REVISION_2 => (word(1)? | word(3)? << 32, 20),
            REVISION_3 => (word(1)? | word(3)? << 32, 24),
            _ => return None,
        };
        (value.len() == length).then_some(FileCapabilities {
            permitted: Capabilities(permitted),
            effective: magic & EFFECTIVE != 0,
        })
    }
}

/// What a file's `security.capability` attribute grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCapabilities {
    /// The capabilities the program may have.
    pub permitted: Capabilities,
    /// Whether it has them from the start.
    pub effective: bool,
}

impl fmt::Display for FileCapabilities {
    /// As `getcap` shows them: `cap_net_bind_service=ep`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.permitted.names().join(",").to_ascii_lowercase();
        let flags = if self.effective { "ep" } else { "p" };
        write!(f, "{names}={flags}")
    }
}

/// A `security.capability` value as people read it: `cap_net_bind_service=ep` as `getcap`
/// shows it, or what it is when it cannot be read.
pub fn describe(value: &[u8]) -> String {
    match Capabilities::from_xattr(value) {
        Some(capabilities) => capabilities.to_string(),
        None => format!("unreadable ({} bytes)", value.len()),
    }
}

fn cap_name(bare: &str) -> String {
    format!("CAP_{}", bare.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_taken_and_an_unknown_name_lists_the_known_ones() {
        let caps = Capabilities::parse(&["CAP_NET_BIND_SERVICE", "net_raw", "CHOWN"]).unwrap();
        assert_eq!(
            caps.names(),
            ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
        );
        let error = Capabilities::parse(&["CAP_NET_BIND"]).unwrap_err();
        assert!(
            error.starts_with(
                "`CAP_NET_BIND` is not a Linux capability; \
                 expected one of CAP_CHOWN, CAP_DAC_OVERRIDE,"
            ),
            "{error}"
        );
        assert!(
            error.ends_with("CAP_BPF, CAP_CHECKPOINT_RESTORE"),
            "{error}"
        );
        assert_eq!(Capabilities::parse::<&str>(&[]), Ok(Capabilities::NONE));
    }

    /// The bytes `setcap cap_net_bind_service,cap_checkpoint_restore=ep` writes.
    #[test]
    fn the_value_is_a_revision_2_with_the_effective_flag() {
        let caps = Capabilities::parse(&["net_bind_service", "checkpoint_restore"]).unwrap();
        let value = caps.xattr().unwrap();
        assert_eq!(
            value,
            [
                0x01, 0, 0, 0x02, // magic_etc: revision 2, effective
                0, 0x04, 0, 0, // permitted, low: bit 10
                0, 0, 0, 0, // inheritable, low
                0, 0x01, 0, 0, // permitted, high: bit 40
                0, 0, 0, 0, // inheritable, high
            ]
        );
        let read = Capabilities::from_xattr(&value).unwrap();
        assert_eq!(read.permitted, caps);
        assert_eq!(
            read.to_string(),
            "cap_net_bind_service,cap_checkpoint_restore=ep"
        );
        assert_eq!(Capabilities::NONE.xattr(), None);
        assert_eq!(Capabilities::from_xattr(&value[..12]), None);
        assert_eq!(Capabilities::from_xattr(b"garbage"), None);
    }
}
