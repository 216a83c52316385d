//! The engines start, answer, and keep tests apart.

#[test]
fn postgres_starts_on_a_socket_and_gives_each_test_its_own_database() {
    let Some(pg) = emrest_testkit::postgres::postgres() else {
        return;
    };
    let a = pg.fresh_database("engines");
    let b = pg.fresh_database("engines");
    assert_ne!(a, b);
    let db = |url: &str| {
        let path = url.split('?').next().unwrap_or(url);
        path.rsplit('/').next().unwrap_or(path).to_string()
    };
    pg.psql(
        &db(&a),
        "CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (7)",
    )
    .unwrap();
    assert_eq!(pg.psql(&db(&a), "SELECT n FROM t").unwrap(), "7");
    assert!(
        pg.psql(&db(&b), "SELECT n FROM t").is_err(),
        "databases are apart"
    );
    let version = pg.psql("postgres", "SHOW server_version_num").unwrap();
    assert!(version.parse::<u32>().unwrap() >= 150000, "{version}");
    assert_eq!(
        pg.psql("postgres", "SHOW listen_addresses").unwrap(),
        "",
        "no TCP listener"
    );
}
