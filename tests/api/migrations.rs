//! Both migration trees stay in step, and up → down → up works on the backend under test.

use portcullis::store::migrations::{self, Action, Outcome};

use crate::helpers::TestDb;

fn folder_names(backend: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn both_trees_hold_the_same_migrations() {
    let (mysql, sqlite) = migrations::embedded_names();
    assert!(!mysql.is_empty());
    assert_eq!(mysql, sqlite, "embedded migrations differ between backends");
    assert_eq!(folder_names("mysql"), folder_names("sqlite"));
    for name in folder_names("mysql") {
        for backend in ["mysql", "sqlite"] {
            for file in ["up.sql", "down.sql"] {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(backend)
                    .join(&name)
                    .join(file);
                assert!(path.is_file(), "{} is missing", path.display());
            }
        }
    }
}

async fn applied(url: &str) -> Vec<bool> {
    match migrations::run(url, Action::Status).await.unwrap() {
        Outcome::Status(list) => list.into_iter().map(|m| m.applied).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn up_down_up_round_trip() {
    let db = TestDb::new().await;
    assert!(applied(&db.url).await.iter().all(|a| !a));

    migrations::run(&db.url, Action::RunPending).await.unwrap();
    assert!(applied(&db.url).await.iter().all(|a| *a));
    // The schema really is there: the pool can query a table.
    let pool = portcullis::store::Pool::build(&db.settings().database).unwrap();
    assert!(portcullis::store::users::list(&pool)
        .await
        .unwrap()
        .is_empty());

    migrations::run(&db.url, Action::RevertAll).await.unwrap();
    assert!(applied(&db.url).await.iter().all(|a| !a));
    assert!(
        portcullis::store::users::list(&pool).await.is_err(),
        "tables should be gone after down"
    );

    migrations::run(&db.url, Action::RunPending).await.unwrap();
    assert!(applied(&db.url).await.iter().all(|a| *a));
    assert!(portcullis::store::users::list(&pool)
        .await
        .unwrap()
        .is_empty());
}
