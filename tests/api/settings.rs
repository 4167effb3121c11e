//! Settings precedence: compiled defaults < config/default.toml < --config FILE < environment.

use crate::helpers::run_binary;

fn bind_shown(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .skip_while(|l| *l != "[server]")
        .find_map(|l| l.strip_prefix("bind = "))
        .unwrap_or_else(|| panic!("no bind in {text}"))
        .trim_matches('"')
        .to_string()
}

#[test]
fn each_layer_overrides_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let show = |args: &[&str], env: &[(String, String)]| {
        bind_shown(&run_binary(cwd, args, None, env, None))
    };

    // 1. Compiled default.
    assert_eq!(show(&["config", "show"], &[]), "127.0.0.1:8080");

    // 2. config/default.toml in the working directory.
    std::fs::create_dir(cwd.join("config")).unwrap();
    std::fs::write(
        cwd.join("config/default.toml"),
        "[server]\nbind = \"127.0.0.1:1001\"\n",
    )
    .unwrap();
    assert_eq!(show(&["config", "show"], &[]), "127.0.0.1:1001");

    // 3. --config FILE.
    let file = cwd.join("site.toml");
    std::fs::write(&file, "[server]\nbind = \"127.0.0.1:1002\"\n").unwrap();
    let with_file = ["--config", file.to_str().unwrap(), "config", "show"];
    assert_eq!(show(&with_file, &[]), "127.0.0.1:1002");

    // 4. Environment.
    let env = [(
        "PORTCULLIS__SERVER__BIND".to_string(),
        "127.0.0.1:1003".to_string(),
    )];
    assert_eq!(show(&with_file, &env), "127.0.0.1:1003");
}

#[test]
fn shipped_default_toml_matches_compiled_defaults() {
    // config/default.toml documents every key with its default: it must not change anything.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = run_binary(root, &["config", "show"], None, &[], None);
    let dir = tempfile::tempdir().unwrap();
    let compiled = run_binary(dir.path(), &["config", "show"], None, &[], None);
    assert!(shipped.status.success() && compiled.status.success());
    assert_eq!(
        String::from_utf8_lossy(&shipped.stdout),
        String::from_utf8_lossy(&compiled.stdout)
    );

    // And it names every key that `config show` prints, with its env name.
    let doc = std::fs::read_to_string(root.join("config/default.toml")).unwrap();
    let mut section = String::new();
    for line in String::from_utf8_lossy(&compiled.stdout).lines() {
        if let Some(s) = line.strip_prefix('[') {
            section = s.trim_end_matches(']').to_string();
        } else if let Some((key, _)) = line.split_once(" = ") {
            let env = format!(
                "PORTCULLIS__{}__{}",
                section.to_uppercase().replace('.', "__"),
                key.to_uppercase()
            );
            assert!(
                doc.contains(&format!("{key} = ")),
                "config/default.toml lacks {section}.{key}"
            );
            assert!(
                doc.contains(&env),
                "config/default.toml does not name {env}"
            );
        }
    }
}
