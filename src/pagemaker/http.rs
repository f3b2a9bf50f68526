//! The routing table: one arm per page, the login wall in front of them.
//! The top of the dashboard: it knows every renderer, none knows it. The
//! request and answer types are `web.rs`'s, the sockets `serve.rs`'s.

use super::web::{Method, Req, Resp, TEXT};
use super::{api, login, pages, views, Shared};

/// The routing table: one arm per page.
pub fn route(sh: &Shared, req: &Req) -> Resp {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let user = login::session_user(sh, req);
    if user.is_none() && sh.site().part.login_required && !matches!(segs.as_slice(), ["login"]) {
        if segs.first() == Some(&"api") {
            return api::error(401, "log in first");
        }
        return Resp::redirect("/login");
    }
    let u = user.as_ref();
    match (req.method, segs.as_slice()) {
        (Method::Get, []) => pages::problems(sh, req, u),
        (Method::Get, ["hosts"]) => pages::hosts(sh, req, u),
        (Method::Get, ["host", h]) => pages::host(sh, req, u, h),
        (Method::Get, ["item", i]) => pages::item(sh, req, u, i),
        (Method::Get, ["events"]) => views::events(sh, req, u),
        (Method::Get, ["alerts"]) => views::alerts(sh, req, u),
        (Method::Get, ["graph", h, i]) => views::graph(sh, req, u, h, Some(i)),
        (Method::Get, ["graph", h]) => views::graph(sh, req, u, h, None),
        (Method::Get, ["svg", h, i]) => views::svg(sh, req, u, h, Some(i)),
        (Method::Get, ["svg", h]) => views::svg(sh, req, u, h, None),
        (Method::Get, ["login"]) => views::login_page(sh, req, None),
        (Method::Post, ["login"]) => views::login(sh, req),
        (Method::Post, ["logout"]) => login::logout(sh, req),
        (Method::Post, ["ack"]) => views::change(sh, req, u, "ack"),
        (Method::Post, ["silence"]) => views::change(sh, req, u, "silence"),
        (Method::Get, ["metrics"]) => login::metrics(sh, req, u),
        (_, ["api", "v1", rest @ ..]) => api::route(sh, req, u, rest),
        (Method::Get, ["favicon.ico"]) => Resp::new(204, TEXT, ""),
        (Method::Get, _) => pages::not_found(sh, req, u, "No such page."),
        (Method::Post, _) => Resp::new(405, TEXT, "method not allowed\n"),
    }
}
