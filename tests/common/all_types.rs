//! A database covering every supported PostgreSQL type, one row of it, and that row as
//! Debezium JSON (payload) renders it.

use serde_json::{json, Value};

pub const SETUP: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
CREATE TABLE all_types (
  id int4 PRIMARY KEY,
  c_bool bool, c_int2 int2, c_int8 int8, c_float4 float4, c_float8 float8,
  c_num numeric(10,2), c_num_free numeric, c_num_nan numeric, c_money money,
  c_text text, c_varchar varchar(20), c_char char(3), c_bytea bytea,
  c_date date, c_time time, c_time3 time(3), c_timetz timetz,
  c_ts timestamp, c_ts3 timestamp(3), c_ts_inf timestamp, c_tstz timestamptz, c_tstz_inf timestamptz,
  c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_xml xml,
  c_inet inet, c_cidr cidr, c_macaddr macaddr, c_enum mood,
  c_bit1 bit(1), c_bit8 bit(8), c_varbit varbit(16), c_domain posint,
  c_int_arr int4[], c_text_arr text[]
);
ALTER TABLE all_types REPLICA IDENTITY FULL;
CREATE TABLE customers (id int4 PRIMARY KEY, name text NOT NULL, bio text);
CREATE TABLE orders (order_no int4, line int2, qty int4, PRIMARY KEY (order_no, line));
ALTER TABLE orders REPLICA IDENTITY FULL;
INSERT INTO customers VALUES (1, 'snapshot-row', NULL);
"#;

pub const ROW: &str = r#"
INSERT INTO all_types VALUES (
  1, true, -3, 9007199254740993, 1.5, 2.25,
  12.34, 1.5, 'NaN', 12.50,
  'hé "quoted"', 'varchar', 'ab', '\xdeadbeef',
  '2024-01-02', '01:02:03.5', '01:02:03.5', '10:15:30+02',
  '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123', 'infinity', '2024-01-02 03:04:05.5+02', '-infinity',
  '1 day 2 hours', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [1, 2]}', '<a>1</a>',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', 'happy',
  B'1', B'10000001', B'101', 42,
  '{1,2,NULL}', '{a,"b c"}'
);
"#;

pub fn expected_after() -> Value {
    json!({
        "id": 1, "c_bool": true, "c_int2": -3, "c_int8": 9007199254740993i64,
        "c_float4": 1.5, "c_float8": 2.25,
        "c_num": "BNI=", "c_num_free": {"scale": 1, "value": "Dw=="}, "c_num_nan": null, "c_money": "BOI=",
        "c_text": "hé \"quoted\"", "c_varchar": "varchar", "c_char": "ab ", "c_bytea": "3q2+7w==",
        "c_date": 19724, "c_time": 3723500000i64, "c_time3": 3723500, "c_timetz": "08:15:30Z",
        "c_ts": 1704164645123456i64, "c_ts3": 1704164645123i64, "c_ts_inf": 9223372036825200000i64,
        "c_tstz": "2024-01-02T01:04:05.500000Z", "c_tstz_inf": "-infinity",
        "c_interval": 93600000000i64, "c_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "c_json": "{\"a\": 1}", "c_jsonb": "{\"b\": [1, 2]}", "c_xml": "<a>1</a>",
        "c_inet": "192.168.0.1/24", "c_cidr": "10.0.0.0/8", "c_macaddr": "08:00:2b:01:02:03", "c_enum": "happy",
        "c_bit1": true, "c_bit8": "gQ==", "c_varbit": "BQA=", "c_domain": 42,
        "c_int_arr": [1, 2, null], "c_text_arr": ["a", "b c"]
    })
}
