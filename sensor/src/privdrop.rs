//! Least privilege for live capture: the capture handle (and the metrics socket) are opened
//! as root, then the process switches to an unprivileged user for the months it spends
//! reading attacker-controlled bytes. The output directory is handed to that user first so
//! rotation keeps working.

use nix::unistd::{chown, setgid, setgroups, setuid, Uid, User};
use std::path::Path;

/// A directory with the sticky bit (like /tmp): shared, never chowned.
pub fn is_sticky(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o1000 != 0)
}

/// Switches to `user` (all of uid, gid and supplementary groups) when running as root; a
/// no-op otherwise or when `user` is empty. `own` are paths given to the user first.
pub fn drop_to(user: &str, own: &[&Path]) -> Result<Option<String>, String> {
    if user.is_empty() || !Uid::effective().is_root() {
        return Ok(None);
    }
    let u = User::from_name(user)
        .map_err(|e| format!("capture.user {user:?}: {e}"))?
        .ok_or_else(|| format!("capture.user {user:?}: no such user"))?;
    for p in own {
        if p.exists() {
            chown(*p, Some(u.uid), Some(u.gid))
                .map_err(|e| format!("{}: chown to {user}: {e}", p.display()))?;
        }
    }
    setgroups(&[u.gid]).map_err(|e| format!("setgroups: {e}"))?;
    setgid(u.gid).map_err(|e| format!("setgid {}: {e}", u.gid))?;
    setuid(u.uid).map_err(|e| format!("setuid {}: {e}", u.uid))?;
    // Make sure the switch is one-way.
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err(format!(
            "still able to regain root after switching to {user}"
        ));
    }
    Ok(Some(format!("{user} (uid {}, gid {})", u.uid, u.gid)))
}
