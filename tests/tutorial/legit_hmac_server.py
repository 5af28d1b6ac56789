# The tutorial's legitimacy check with hmac ("使用 hmac 加密", server.py), faithfully: it
# challenges one client, prints 是合法的客户端 if the answer is right, and exits. See
# README.md for what changed.
# Usage: legit_hmac_server.py HOST PORT
import os
import socket
import hmac
import sys
secret_key = '老衲洗头用飘柔'.encode('utf-8')
sk = socket.socket()
sk.bind((sys.argv[1], int(sys.argv[2])))  # changed: was ('127.0.0.1',9000)
sk.listen()
while True:
    try:
        conn,addr = sk.accept()
        random_bytes = os.urandom(32)
        conn.send(random_bytes)
        obj = hmac.new(key=secret_key,msg=random_bytes,digestmod='md5')  # changed: digestmod (Python >= 3.8)
        ret = obj.hexdigest()
        msg = conn.recv(1024).decode('utf-8')
        if msg == ret:print('是合法的客户端')
        else:conn.close()
    finally:
        sk.close()
        break
