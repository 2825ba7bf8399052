-- The demo's sample MySQL / MariaDB database `shop` (scripts/demo and docker-compose.yml).
CREATE DATABASE IF NOT EXISTS shop;
USE shop;
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  first_name VARCHAR(100) NOT NULL,
  last_name VARCHAR(100) NOT NULL,
  email VARCHAR(255) NOT NULL UNIQUE,
  vip BOOLEAN NOT NULL DEFAULT FALSE,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
);
CREATE TABLE orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  status ENUM('new', 'paid', 'shipped') NOT NULL DEFAULT 'new',
  total DECIMAL(10, 2) NOT NULL,
  placed_on DATE NOT NULL,
  FOREIGN KEY (customer_id) REFERENCES customers (id)
);
INSERT INTO customers (first_name, last_name, email, vip) VALUES
  ('Sally', 'Thomas', 'sally.thomas@example.com', TRUE),
  ('George', 'Bailey', 'gbailey@example.com', FALSE),
  ('Edward', 'Walker', 'ed@example.com', FALSE);
INSERT INTO orders (customer_id, status, total, placed_on) VALUES
  (1, 'paid', 19.99, '2024-01-16'),
  (2, 'new', 120.00, '2024-01-17'),
  (2, 'shipped', 5.50, '2024-02-19');
