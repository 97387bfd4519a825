//! `imgguard rmi REF…`: removal that never leaves a `<none>` image in use behind. If a container
//! uses the image and the reference is its last name, refuse (exit 1) and name the container;
//! `docker rmi -f` would untag it and leave it dangling. There is no force option. A tag of an
//! image that keeps other tags is only untagged, as docker does. Every change is recorded.

use std::collections::BTreeSet;

use crate::cli::RmiArgs;
use crate::core::event::{Event, EventKind};
use crate::core::policy::{rmi_verdict, RmiVerdict};
use crate::core::reference::{Reference, Tag};
use crate::engine::{ImageInfo, RemovedRef};
use crate::error::{Error, Outcome};

/// Runs the command.
pub fn run(args: &RmiArgs) -> Result<Outcome, Error> {
    // Every reference is checked before anything is removed.
    let mut refs = Vec::with_capacity(args.refs.len());
    for r in &args.refs {
        let parsed = Reference::parse(r).map_err(|e| Error::Usage(e.to_string()))?;
        let (text, by_tag) = match parsed {
            Reference::Id(id) => (id, false),
            Reference::Named { digest: Some(_), .. } => (r.clone(), false),
            Reference::Named { .. } => {
                (Tag::parse(r).map_err(|e| Error::Usage(e.to_string()))?.to_string(), true)
            }
        };
        refs.push((text, by_tag));
    }
    super::runtime()?.block_on(async {
        let engine = super::connect().await?;
        let (identity, containers) = tokio::join!(engine.identity(), engine.containers());
        let (identity, containers) = (identity?, containers?);
        let mut infos: Vec<ImageInfo> = Vec::with_capacity(refs.len());
        for (r, _) in &refs {
            match engine.inspect(r).await? {
                Some(info) => infos.push(info),
                None => return Err(Error::Usage(format!("no such image: {r}"))),
            }
        }
        // Opened only once every reference is known to exist: a refused call creates nothing.
        let mut store = super::open_ledger()?;
        let now = super::now_ms();
        let mut events = Vec::new();
        let mut refused = false;
        for ((r, by_tag), info) in refs.iter().zip(&infos) {
            let users: BTreeSet<(String, String)> = containers
                .iter()
                .filter(|c| c.image_id == info.id)
                .map(|c| (c.name.clone(), c.state.clone()))
                .collect();
            let users: Vec<(String, String)> = users.into_iter().collect();
            // The tags may have changed since the inspect above, through an earlier operand.
            let tags = match engine.inspect(info.id.as_str()).await? {
                Some(now) => now.repo_tags,
                None => {
                    say!("{r}: already gone");
                    continue;
                }
            };
            if let RmiVerdict::Refuse(reason) = rmi_verdict(*by_tag, &tags, &users) {
                eprintln!(
                    "imgguard: refusing to remove {r}: {} {reason}; removing it would leave a \
                     <none> image behind (stop and remove the container first)",
                    info.id.short()
                );
                refused = true;
                continue;
            }
            match engine.remove_reference(r).await? {
                RemovedRef::Done { untagged, deleted } => {
                    for t in &untagged {
                        say!("untagged {t}");
                        let mut e = Event::new(&identity.id, now, EventKind::Untag);
                        e.tag = Some(Tag::parse(t).map_or_else(|_| t.clone(), |t| t.to_string()));
                        e.previous_id = Some(info.id.to_string());
                        e.reason = Some("imgguard rmi".into());
                        events.push(e);
                    }
                    for d in &deleted {
                        say!("removed {d}");
                        let mut e = Event::new(&identity.id, now, EventKind::Removed);
                        e.image_id = Some(d.clone());
                        e.outcome = Some("removed".into());
                        e.reason = Some(format!("imgguard rmi {r}"));
                        events.push(e);
                    }
                }
                RemovedRef::Conflict(msg) => {
                    eprintln!("imgguard: the daemon refused to remove {r}: {msg}");
                    refused = true;
                }
                RemovedRef::NotFound => say!("{r}: already gone"),
            }
        }
        if !events.is_empty() {
            store.append(Some((&identity.id, &identity.name, &engine.endpoint().host)), &events)?;
        }
        Ok(if refused { Outcome::Refused } else { Outcome::Ok })
    })
}
