//! The site row: which site this database belongs to.

use dv_protocol::{Actor, Event, EventBody, Message, Site};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, outbox};

/// Records `site` as this database's site, or refuses if the database already
/// belongs to another site. Idempotent for the same site; a new site or a
/// changed domain is recorded with a `site.evt.site.registered` event.
pub async fn register(store: &Store, site: &Site) -> Result<(), StoreError> {
    let path = store.path().to_owned();
    let site = site.clone();
    store
        .write(move |conn| {
            let name = site.name.to_string();
            let domain = site.domain.to_string();
            let existing: Option<(String, String)> = conn
                .prepare_cached("SELECT name, domain FROM site LIMIT 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match existing {
                Some((found, _)) if found != name => {
                    return Err(StoreError::WrongSite {
                        path,
                        found,
                        expected: name,
                    });
                }
                Some((_, found_domain)) if found_domain == domain => return Ok(()),
                _ => {}
            }
            conn.prepare_cached(
                "INSERT INTO site (name, domain, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (name) DO UPDATE SET domain = excluded.domain, updated_at = excluded.updated_at",
            )?
            .execute(params![name, domain, super::now_nanos()])?;
            let message = Message::from_event(
                site.name.clone(),
                Actor::agent(&site.name),
                Event::new(EventBody::SiteRegistered { site }),
            );
            outbox::record(conn, &message)?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dv_protocol::SiteName;

    fn site(name: &str, domain: &str) -> Site {
        Site::new(SiteName::new(name).unwrap(), domain.parse().unwrap(), None).unwrap()
    }

    #[tokio::test]
    async fn registering_is_idempotent_and_refuses_another_site() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        register(&store, &site("lab", "dataverket.test"))
            .await
            .unwrap();
        register(&store, &site("lab", "dataverket.test"))
            .await
            .unwrap();
        let events = store.read(|c| outbox::pending(c, 10)).await.unwrap();
        assert_eq!(events.len(), 1, "a repeated start is not news");
        assert_eq!(events[0].subject, "dv.lab.site.evt.site.registered");

        register(&store, &site("lab", "example.org")).await.unwrap();
        assert_eq!(store.read(outbox::pending_count).await.unwrap(), 2);

        let err = register(&store, &site("osl1", "example.org"))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"lab\"") && msg.contains("\"osl1\""), "{msg}");
        store.close().await;
    }
}
