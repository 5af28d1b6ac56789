# The tutorial's big-file download server ("大文件传输", server.py), faithfully: it
# serves one client one file and exits. See README.md for what changed.
# Usage: server_download.py HOST PORT FILE
import os
import json
import socket
import struct
import sys
filepath = sys.argv[3]  # changed: was a film on drive E:
sk = socket.socket()
sk.bind((sys.argv[1], int(sys.argv[2])))  # changed: was ('127.0.0.1',9000)
sk.listen()
conn,addr = sk.accept()
filename = os.path.basename(filepath)
filesize = os.path.getsize(filepath)
dic = {'filename':filename,'filesize':filesize}
str_dic = json.dumps(dic).encode('utf-8')
len_dic = len(str_dic)
length = struct.pack('i',len_dic)
conn.send(length) # dic的长度
conn.send(str_dic) # dic
with open(filepath,'rb') as f: # 文件
    while filesize:
        content = f.read(4096)
        conn.send(content)
        filesize -= len(content)
        '''
        这里不能减等4096,因为文件,最后可能只有3字节。
        要根据读取的长度len(content),来计算才是合理的。
        '''
conn.close()
sk.close()
