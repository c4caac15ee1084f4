//! The first start on an empty registry creates one admin key, however many processes start on it
//! at once (each `Platform` here stands for a process on the same data directory).

use aurum_service::{Config, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_create_one_admin_key() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        let mut platforms = Vec::new();
        for _ in 0..4 {
            platforms.push(Platform::open(config.clone()).await.unwrap());
        }
        let starts: Vec<_> = platforms
            .iter()
            .map(|p| {
                let p = p.clone();
                tokio::spawn(async move { p.ensure_bootstrap_admin().await })
            })
            .collect();
        let mut created = Vec::new();
        for s in starts {
            let answer = s.await.unwrap().expect("no process fails to start");
            created.extend(answer);
        }
        assert_eq!(
            created.len(),
            1,
            "round {round}: one process creates the key"
        );
        let file = std::fs::read_to_string(config.data_dir.join("admin.key")).unwrap();
        assert_eq!(file.trim(), created[0]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(config.data_dir.join("admin.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let keys = platforms[0].list_keys().await.unwrap();
        assert_eq!(keys.len(), 1, "round {round}: {keys:?}");
        // And a later start creates nothing.
        assert_eq!(platforms[1].ensure_bootstrap_admin().await.unwrap(), None);
    }
}
