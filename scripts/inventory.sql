-- The demo's sample database.
CREATE TABLE customers (
  id serial PRIMARY KEY,
  first_name text NOT NULL,
  last_name text NOT NULL,
  email varchar(255) NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers (id),
  status order_status NOT NULL DEFAULT 'new',
  total numeric(10, 2) NOT NULL,
  placed_on date NOT NULL DEFAULT current_date
);
INSERT INTO customers (first_name, last_name, email) VALUES
  ('Sally', 'Thomas', 'sally.thomas@example.com'),
  ('George', 'Bailey', 'gbailey@example.com'),
  ('Edward', 'Walker', 'ed@example.com'),
  ('Anne', 'Kretchmar', 'annek@example.com');
INSERT INTO orders (customer_id, status, total, placed_on) VALUES
  (1, 'paid', 19.99, '2024-01-16'),
  (2, 'new', 120.00, '2024-01-17'),
  (2, 'shipped', 5.50, '2024-02-19');
