//! Headless Chromium for the page tests: Debian's `chromium` driven over WebDriver by
//! `chromedriver` (one driver and one browser per test, both gone when the test ends), plus
//! screenshots and an axe-core accessibility check.
//!
//! There is no skip: if Chromium or chromedriver cannot start, the test fails and says how to
//! install them. `CHROMIUM` and `CHROMEDRIVER` override the binaries' paths.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Chromium is heavy on two cores: at most two run at once.
static BROWSERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewport {
    /// 1280×800
    Desktop,
    /// 390×844, a phone, with touch and a device pixel ratio of 2.
    Mobile,
}

impl Viewport {
    pub fn name(self) -> &'static str {
        match self {
            Viewport::Desktop => "desktop",
            Viewport::Mobile => "mobile",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub viewport: Viewport,
    pub javascript: bool,
    /// `prefers-color-scheme: dark`.
    pub dark: bool,
}

impl Options {
    pub fn desktop() -> Self {
        Options {
            viewport: Viewport::Desktop,
            javascript: true,
            dark: false,
        }
    }

    pub fn mobile() -> Self {
        Options {
            viewport: Viewport::Mobile,
            javascript: true,
            dark: false,
        }
    }

    pub fn dark(self) -> Self {
        Options { dark: true, ..self }
    }

    pub fn without_javascript(self) -> Self {
        Options {
            javascript: false,
            ..self
        }
    }
}

/// A running chromedriver and one browser session on it.
pub struct Browser {
    pub client: Client,
    pub options: Options,
    driver: Child,
    _profile: tempfile::TempDir,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

fn binary(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_string())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port for chromedriver")
}

impl Browser {
    pub async fn start(options: Options) -> Browser {
        let permit = BROWSERS.acquire().await.expect("browser semaphore");
        let driver_path = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {driver_path}: {e}. The page tests need Chromium: \
                     apt-get install chromium chromium-driver"
                )
            });
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args = vec![
            "--headless=new".to_string(),
            // CI runs as root, where Chromium's sandbox cannot start.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-extensions".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut chrome = json!({ "binary": chromium });
        match options.viewport {
            Viewport::Desktop => args.push("--window-size=1280,800".into()),
            Viewport::Mobile => {
                chrome["mobileEmulation"] = json!({
                    "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": true },
                    "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36"
                });
            }
        }
        if options.dark {
            args.push("--force-dark-mode".into());
        }
        if !options.javascript {
            chrome["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        chrome["args"] = json!(args);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), chrome);
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() > Duration::from_secs(30) => panic!(
                    "Chromium did not start through {driver_path} ({chromium}): {e}. \
                     The page tests need it: apt-get install chromium chromium-driver"
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client,
            options,
            driver,
            _profile: profile,
            _permit: permit,
        }
    }

    /// Ends the browser session, then the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop ends the driver.
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("current url")
    }

    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("body text")
    }

    pub async fn h1(&self) -> String {
        self.client
            .find(Locator::Css("h1"))
            .await
            .expect("the page has a heading")
            .text()
            .await
            .expect("heading text")
    }

    pub async fn value_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .expect("field")
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    /// Types into whatever has the focus, as a person at the keyboard would.
    pub async fn type_keys(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .expect("a focused element")
            .send_keys(keys)
            .await
            .expect("typing");
    }

    pub async fn press_tab(&self) {
        self.type_keys(&fantoccini::key::Key::Tab.to_string()).await;
    }

    pub async fn press_enter(&self) {
        self.type_keys(&fantoccini::key::Key::Enter.to_string())
            .await;
    }

    /// The accessible text of the focused element (a button's label, a field's name).
    pub async fn focused(&self) -> String {
        let el = self.client.active_element().await.expect("focus");
        let text = el.text().await.unwrap_or_default();
        if text.is_empty() {
            el.attr("name").await.ok().flatten().unwrap_or_default()
        } else {
            text
        }
    }

    /// Tabs forward until the focused element's text or name is `label` (at most 15 presses).
    pub async fn tab_to(&self, label: &str) {
        for _ in 0..15 {
            if self.focused().await == label {
                return;
            }
            self.press_tab().await;
        }
        panic!("could not reach {label:?} with the Tab key");
    }

    /// Saves a screenshot of the viewport to `target/screenshots/<backend>/<name>-<viewport>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let js = if self.options.javascript { "" } else { "-nojs" };
        let dark = if self.options.dark { "-dark" } else { "" };
        let file = dir.join(format!(
            "{name}-{}{dark}{js}.png",
            self.options.viewport.name()
        ));
        std::fs::write(&file, png).expect("write screenshot");
    }

    /// Runs axe-core on the page; fails on any serious or critical violation. Needs JavaScript
    /// in the session (WebDriver's script runs outside the page's CSP).
    pub async fn assert_accessible(&self, page: &str) {
        assert!(self.options.javascript, "axe needs JavaScript");
        let axe = std::fs::read_to_string(axe_path()).unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}): run `npm ci --prefix tests/axe` first",
                axe_path().display()
            )
        });
        self.client
            .execute(&format!("{axe}\n;return true;"), vec![])
            .await
            .expect("inject axe-core");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                  nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) }))))
                   .catch(e => done([{ id: 'axe-error', help: String(e) }]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        let violations = result.as_array().cloned().unwrap_or_default();
        assert!(
            violations.is_empty(),
            "{page} ({}): serious/critical accessibility violations:\n{}",
            self.options.viewport.name(),
            serde_json::to_string_pretty(&Value::Array(violations)).unwrap_or_default()
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never reached `close`: the driver still goes (and with it,
        // on its exit, the browser it started).
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A browser whose driver was killed may outlive it: end whatever used this profile.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self._profile.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn axe_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/axe/node_modules/axe-core/axe.min.js")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let backend = if crate::helpers::mysql_base_url().is_some() {
        "mariadb"
    } else {
        "sqlite"
    };
    target.join("screenshots").join(backend)
}
