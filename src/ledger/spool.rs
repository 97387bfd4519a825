//! The fleet ledger's spool: the local SQLite ledger. With a fleet database configured, commands
//! write to it; when it cannot be reached, a command records in the local ledger instead (one
//! warning line says so), and the events recorded there and not yet sent are sent at the next
//! command that reaches the database, or by `imgguard ledger sync`: in log order, in one
//! transaction, exactly once (each event keeps its unique ID, which the database never takes
//! twice, and the local ledger remembers up to where it has sent, per database, in `meta`).

use sha2::{Digest, Sha256};

use super::{postgres, sqlite, Access, Ledger, LedgerError};

/// The `meta` key under which the local ledger remembers the last event sent to `url`.
pub fn mark_key(url: &str) -> String {
    let digest = Sha256::digest(postgres::shown_url(url).as_bytes());
    format!("spool_sent:{}", hex::encode(digest))
}

/// Sends the local ledger's unsent events to the database; returns how many were new there.
pub fn sync(
    local: &mut sqlite::Store,
    fleet: &mut postgres::Store,
    url: &str,
) -> Result<u64, LedgerError> {
    let key = mark_key(url);
    let mark = local.spool_mark(&key)?.unwrap_or(0);
    let mut pending = Vec::new();
    local.export_after(mark, &mut |seq, uid, e| {
        pending.push((seq, uid.to_string(), e.clone()));
        true
    })?;
    let Some(last) = pending.last().map(|p| p.0) else { return Ok(0) };
    let mut it = pending.into_iter();
    let sent = fleet.import(&mut || Ok(it.next().map(|(_, uid, e)| (uid, e))))?;
    // Sent and committed: only now is the mark moved. A crash in between sends them again,
    // and the database skips what it has.
    local.set_spool_mark(&key, last)?;
    Ok(sent.added)
}

/// Opens the fleet ledger at `url`, sending the spool first; when the database cannot be
/// reached, the local ledger (created if `access` allows) after one warning line.
pub fn open(
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
    access: Access,
) -> Result<Option<Box<dyn Ledger>>, LedgerError> {
    // Once unreachable, the rest of the command uses the spool without asking again (nor
    // warning twice).
    static UNREACHABLE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let local_path = super::location(env)?;
    if UNREACHABLE.get().is_some() {
        return super::open(env, access);
    }
    match postgres::Store::open(url, env, &local_path) {
        Ok(mut fleet) => {
            if local_path.exists() {
                let sent = sqlite::Store::open(&local_path)
                    .and_then(|mut local| sync(&mut local, &mut fleet, url));
                match sent {
                    Ok(0) => {}
                    Ok(n) => crate::ui::note(format!(
                        "sent {n} spooled event{} to the fleet ledger {}",
                        if n == 1 { "" } else { "s" },
                        fleet.shown()
                    )),
                    Err(e) => crate::ui::note(format!(
                        "warning: the spool {} was not sent ({e}); it is sent at the next command",
                        local_path.display()
                    )),
                }
            }
            Ok(Some(Box::new(fleet)))
        }
        Err(LedgerError::Db { message, .. }) => {
            let _ = UNREACHABLE.set(());
            crate::ui::note(format!(
                "warning: fleet ledger {} unreachable ({message}): using the local spool {} \
                 (sent when it is back, or by `imgguard ledger sync`)",
                postgres::shown_url(url),
                local_path.display()
            ));
            super::open(env, access)
        }
        Err(e) => Err(e),
    }
}

/// `imgguard ledger sync`: sends the local ledger's unsent events to the database at `url`,
/// which must answer; returns how many were new there and how many were unsent.
pub fn sync_now(
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(u64, u64), LedgerError> {
    let local_path = super::location(env)?;
    let mut fleet = postgres::Store::open(url, env, &local_path)?;
    if !local_path.exists() {
        return Ok((0, 0));
    }
    let mut local = sqlite::Store::open(&local_path)?;
    let mark = local.spool_mark(&mark_key(url))?.unwrap_or(0);
    let mut pending = 0;
    local.export_after(mark, &mut |_, _, _| {
        pending += 1;
        true
    })?;
    let sent = sync(&mut local, &mut fleet, url)?;
    Ok((sent, pending))
}
