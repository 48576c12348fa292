-- The example CRM host (SQLite). Timestamps are stored without a zone: UTC everywhere but
-- web_sessions.started_at, which the web tier writes in office-local time (Europe/London).
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    customer_ref VARCHAR(255) NOT NULL UNIQUE,
    created_at TIMESTAMP
);
CREATE TABLE enquiries (
    enquiry_ref VARCHAR(255) PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    channel VARCHAR(16) NOT NULL,  -- qq, mq, chat, form, calc: one table, several sources
    created_at TIMESTAMP NOT NULL,
    first_name VARCHAR(255),
    last_name VARCHAR(255),
    company VARCHAR(255),
    email VARCHAR(320),
    phone VARCHAR(64),
    office_size INTEGER,
    office_location VARCHAR(255),
    message TEXT,
    notes_about_others TEXT
);
CREATE INDEX enquiries_customer ON enquiries (customer_id, created_at);
CREATE INDEX enquiries_created ON enquiries (created_at);
CREATE INDEX enquiries_email ON enquiries (email);
-- fairproc finds who gave an address by its trimmed, lower-cased spelling
CREATE INDEX enquiries_email_norm ON enquiries (lower(trim(email)));
CREATE TABLE search_follow_ups (
    follow_up_ref VARCHAR(255) PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    enquiry_ref VARCHAR(255) REFERENCES enquiries (enquiry_ref),
    held_at TIMESTAMP NOT NULL,
    current_address TEXT,
    company VARCHAR(255),
    business_type VARCHAR(255),
    move_reasons TEXT,
    start_date VARCHAR(64),
    budget VARCHAR(64),
    key_drivers TEXT
);
CREATE INDEX follow_ups_customer ON search_follow_ups (customer_id, held_at);
CREATE INDEX follow_ups_held ON search_follow_ups (held_at);
CREATE TABLE handbook_downloads (
    download_ref VARCHAR(255) PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    downloaded_at TIMESTAMP NOT NULL,
    full_name VARCHAR(255),
    email VARCHAR(320),
    phone VARCHAR(64)
);
CREATE INDEX downloads_customer ON handbook_downloads (customer_id, downloaded_at);
CREATE INDEX downloads_at ON handbook_downloads (downloaded_at);
CREATE INDEX downloads_email ON handbook_downloads (email);
CREATE INDEX downloads_email_norm ON handbook_downloads (lower(trim(email)));
CREATE TABLE calls (
    call_ref VARCHAR(255) PRIMARY KEY,
    customer_id INTEGER REFERENCES customers (customer_id),
    started_at TIMESTAMP NOT NULL,
    phone_number VARCHAR(64),
    recording_url VARCHAR(255),
    duration_seconds INTEGER
);
CREATE INDEX calls_customer ON calls (customer_id, started_at);
CREATE INDEX calls_started ON calls (started_at);
CREATE TABLE web_sessions (
    session_ref VARCHAR(255) PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    started_at TIMESTAMP NOT NULL,  -- office-local wall time (Europe/London)
    ip_address VARCHAR(64),
    mac_address VARCHAR(64)
);
CREATE INDEX sessions_customer ON web_sessions (customer_id, started_at);
CREATE INDEX sessions_started ON web_sessions (started_at);
CREATE TABLE lettings (
    letting_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    let_on TIMESTAMP NOT NULL,
    office VARCHAR(255)
);
CREATE INDEX lettings_customer ON lettings (customer_id, let_on);
CREATE TABLE newsletter_unsubscribes (
    unsubscribe_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    unsubscribed_at TIMESTAMP NOT NULL
);
CREATE INDEX unsubscribes_customer ON newsletter_unsubscribes (customer_id, unsubscribed_at);
