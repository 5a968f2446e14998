"""Settings for the sample site and the Storyloop engine (one file, read by both).

Secrets are never written here: they are named by reference, {"env": "VARIABLE"}, and read from
the environment when needed. A channel whose secrets are not set writes to var/outbox/<channel>/.
"""

SITENAME = "Cedar & Clay 松陶家居"
SITESUBTITLE = "Homes renovated, furniture made, stories told by the people who live with them"
AUTHOR = "Cedar & Clay"
SITEURL = "http://127.0.0.1:8000"
RELATIVE_URLS = False

PATH = "content"
OUTPUT_PATH = "output"
THEME = "themes/storyloop"
TIMEZONE = "Asia/Shanghai"
DEFAULT_LANG = "zh"
DEFAULT_DATE_FORMAT = "%Y-%m-%d"

PLUGINS = ["publisher.pelican_plugin"]
READERS = {"rst": None}  # content is Markdown only (and docutils has no Chinese localisation)

ARTICLE_PATHS = ["stories", "testimonials"]
PAGE_PATHS = ["pages"]
STATIC_PATHS = ["images"]
USE_FOLDER_AS_CATEGORY = False
DEFAULT_CATEGORY = "stories"

ARTICLE_URL = "{category}/{slug}.html"
ARTICLE_SAVE_AS = "{category}/{slug}.html"
# Stories in Chinese and English are separate stories, not translations: same URL scheme for all.
ARTICLE_LANG_URL = ARTICLE_URL
ARTICLE_LANG_SAVE_AS = ARTICLE_SAVE_AS
CATEGORY_URL = "{slug}/"
CATEGORY_SAVE_AS = "{slug}/index.html"
PAGE_URL = "{slug}.html"
PAGE_SAVE_AS = "{slug}.html"
PAGE_LANG_URL = PAGE_URL
PAGE_LANG_SAVE_AS = PAGE_SAVE_AS
TAG_SAVE_AS = ""
TAGS_SAVE_AS = ""
AUTHOR_SAVE_AS = ""
AUTHORS_SAVE_AS = ""
ARCHIVES_SAVE_AS = ""
DIRECT_TEMPLATES = ["index", "categories", "404"]
ARTICLE_TRANSLATION_ID = None
PAGE_TRANSLATION_ID = None

FEED_DOMAIN = SITEURL
FEED_ALL_ATOM = "feeds/all.atom.xml"
CATEGORY_FEED_ATOM = "feeds/{slug}.atom.xml"
TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
FEED_MAX_ITEMS = 50

DEFAULT_PAGINATION = 12
SUMMARY_MAX_LENGTH = 40

# Regions readers can browse; the keys are what editors write in `Region:`.
STORYLOOP_REGIONS = {
    "xiamen": "厦门 Xiamen",
    "shanghai": "上海 Shanghai",
    "berlin": "Berlin",
}

STORYLOOP = {
    "timezone": TIMEZONE,
    "database_url": "sqlite:///var/storyloop.db",
    "var_dir": "var",
    "grace_period_hours": 6,
    "max_attempts": 8,
    # Each store's till reads and shows amounts in its currency and locale, in its time zone.
    "stores": {
        "xiamen-1": {
            "name": "松陶家居 厦门思明店",
            "region": "xiamen",
            "currency": "CNY",
            "locale": "zh_CN",
            "timezone": "Asia/Shanghai",
        },
        "shanghai-1": {
            "name": "松陶家居 上海徐汇店",
            "region": "shanghai",
            "currency": "CNY",
            "locale": "zh_CN",
            "timezone": "Asia/Shanghai",
        },
        "berlin-1": {
            "name": "Cedar & Clay Berlin Kreuzberg",
            "region": "berlin",
            "currency": "EUR",
            "locale": "de_DE",
            "timezone": "Europe/Berlin",
        },
    },
    # The till: which refusals it may accept anyway, with a warning on screen ("expired",
    # "other_store", "used", "code_limit", "customer_limit", "total_limit"); minutes to undo.
    "shop": {"accept_with_warning": [], "undo_minutes": 5},
    "tracking": {
        "base_url": "http://127.0.0.1:8000",
        "api_token": {"env": "STORYLOOP_API_TOKEN"},
        # the online shop's currency, for a sale reported without one
        "currency": "CNY",
        # Shopify's webhook signing secret (orders/paid), for POST /webhooks/shopify
        "shopify_secret": {"env": "STORYLOOP_SHOPIFY_SECRET"},
    },
    "channels": {
        "mastodon": {
            "instance": "https://mastodon.social",
            "token": {"env": "STORYLOOP_MASTODON_TOKEN"},
            "window": "08:00-22:00",
            "daily_cap": 4,
        },
        "bluesky": {
            "handle": "cedarandclay.bsky.social",
            "app_password": {"env": "STORYLOOP_BLUESKY_APP_PASSWORD"},
            "window": "08:00-22:00",
        },
        "telegram": {
            "chat_id": "@cedarandclay",
            "bot_token": {"env": "STORYLOOP_TELEGRAM_BOT_TOKEN"},
        },
        "x": {
            "access_token": {"env": "STORYLOOP_X_ACCESS_TOKEN"},
            "window": "08:00-22:00",
        },
        "wechat": {
            "appid": "wx0000000000000000",
            "secret": {"env": "STORYLOOP_WECHAT_SECRET"},
            "author": "松陶家居",
            "daily_cap": 1,
        },
        "weibo": {
            "access_token": {"env": "STORYLOOP_WEIBO_ACCESS_TOKEN"},
            "safe_domain": "127.0.0.1",
        },
        "email": {
            "host": "127.0.0.1",
            "port": 1025,
            "sender": "Cedar & Clay <stories@cedarandclay.example>",
            "subscribers": "content/subscribers.csv",
            "password": {"env": "STORYLOOP_SMTP_PASSWORD"},
        },
        "webhook": {
            "url": "http://127.0.0.1:9000/storyloop",
            "signing_secret": {"env": "STORYLOOP_WEBHOOK_SECRET"},
        },
    },
}
