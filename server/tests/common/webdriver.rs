//! A small W3C WebDriver client for the console's browser tests: starts `chromedriver` as a
//! child process, opens a headless Chromium session and speaks JSON over HTTP to it (navigate,
//! find by CSS, type, click, read text and source, cookies, screenshots).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where Debian's `chromium-driver` puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The WebDriver key code of Tab and Enter.
pub const TAB: &str = "\u{E004}";
/// Enter.
pub const ENTER: &str = "\u{E007}";

/// Whether the browser tests can run here: `None` to run, `Some(reason)` to skip. Under CI
/// (`CI=true`) a missing driver fails instead.
pub fn skip_reason() -> Option<String> {
    if Path::new(CHROMEDRIVER).exists() {
        return None;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "CI=true but {CHROMEDRIVER} is missing: install chromium and chromium-driver \
         (scripts/setup.sh)"
    );
    Some(format!(
        "{CHROMEDRIVER} is missing: the console's browser tests did NOT run \
         (install chromium and chromium-driver: scripts/setup.sh)"
    ))
}

/// A running chromedriver and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that accepts the test server's certificate.
    pub fn start() -> Self {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = agent
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1200,850".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": { "args": args },
        } } });
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let reply = browser.call("POST", "/session", Some(capabilities));
        browser.session = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_owned();
        browser
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = self.agent.request(method, &url);
        let result = match body {
            Some(body) => request.send_json(body),
            None if method == "POST" => request.send_json(json!({})),
            None => request.call(),
        };
        let reply: Value = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r.into_json().unwrap(),
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        };
        let value = reply["value"].clone();
        if let Some(error) = value.get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Opens `url`.
    pub fn go(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Every element matching a CSS selector.
    pub fn all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self.session_call(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Element {
                browser: self,
                id: e[ELEMENT].as_str().unwrap().to_owned(),
            })
            .collect()
    }

    /// The first element matching a CSS selector (panics when there is none).
    pub fn find(&self, css: &str) -> Element<'_> {
        self.all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css} on {}", self.url()))
    }

    /// Waits (up to 15 s) until `done` holds: a click or Enter returns before the page it
    /// loads is there.
    pub fn wait(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done(self) {
            if Instant::now() > deadline {
                let main = self.all("main").first().map(Element::text);
                panic!("waited in vain for {what} on {}: {main:?}", self.url());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the URL ends with `suffix`.
    pub fn wait_url(&self, suffix: &str) {
        self.wait(suffix, |b| b.url().ends_with(suffix));
    }

    /// Waits until an element matches `css`, and returns it.
    pub fn wait_find(&self, css: &str) -> Element<'_> {
        self.wait(css, |b| !b.all(css).is_empty());
        self.find(css)
    }

    /// The element that has the keyboard focus.
    pub fn focused(&self) -> Element<'_> {
        let e = self.session_call("GET", "/element/active", None);
        let id = e[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no focused element: {e}"));
        Element {
            browser: self,
            id: id.to_owned(),
        }
    }

    /// The page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        self.session_call("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The value of a cookie the browser holds for the current page, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let all = self.session_call("GET", "/cookie", None);
        all.as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str().map(str::to_owned))
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.session_call("GET", "/screenshot", None);
        data_encoding::BASE64
            .decode(b64.as_str().unwrap().as_bytes())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.agent.delete(&url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// An element of the page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    /// Types `text` into it (WebDriver key codes such as [`TAB`] allowed).
    pub fn keys(&self, text: &str) {
        let path = format!("/element/{}/value", self.id);
        self.browser
            .session_call("POST", &path, Some(json!({ "text": text })));
    }

    /// Clicks it.
    pub fn click(&self) {
        let path = format!("/element/{}/click", self.id);
        self.browser.session_call("POST", &path, None);
    }

    /// Its rendered text.
    pub fn text(&self) -> String {
        let path = format!("/element/{}/text", self.id);
        self.browser
            .session_call("GET", &path, None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// An attribute or property (`id`, `name`, `href`...).
    pub fn attr(&self, name: &str) -> Option<String> {
        let path = format!("/element/{}/attribute/{name}", self.id);
        self.browser
            .session_call("GET", &path, None)
            .as_str()
            .map(str::to_owned)
    }
}
