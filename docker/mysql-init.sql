-- MySQL 8 in docker-compose.yml: Sluice's replication user, then the sample data.
CREATE USER 'sluice'@'%' IDENTIFIED WITH mysql_native_password BY 'sluice';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'sluice'@'%';
