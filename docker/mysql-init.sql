-- MySQL 8.4 in docker-compose.yml: Sluice's replication user, on MySQL's default
-- authentication (caching_sha2_password; mysql_native_password is off by default in 8.4).
CREATE USER 'sluice'@'%' IDENTIFIED WITH caching_sha2_password BY 'sluice';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'sluice'@'%';
